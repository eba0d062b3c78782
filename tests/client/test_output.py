"""What the command line prints: the progress bar's ETA and lines, durations, tables."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

from actionstyle_client.models import ClassifierEntry, JobStatus
from actionstyle_client.output import (
    ProgressBar,
    UploadBar,
    classifier_table,
    eta_s,
    format_duration,
    progress_line,
    table,
)


def status(**changes: Any) -> JobStatus:
    fields: dict[str, Any] = {
        "job_id": "0" * 32,
        "state": "running",
        "style": "vangogh",
        "progress": 0.25,
        "frames_done": 25,
        "frames_total": 100,
        "eta_s": None,
        "error": None,
        "created_at": "2024-05-01T10:00:00+00:00",
        "started_at": "2024-05-01T10:00:00+00:00",
        "finished_at": None,
    }
    return JobStatus.from_json(fields | changes)


def test_eta_is_the_servers_else_extrapolated_from_the_progress() -> None:
    ten_s_in = datetime(2024, 5, 1, 10, 0, 10, tzinfo=UTC)
    assert eta_s(status(eta_s=4.5), now=ten_s_in) == 4.5
    assert eta_s(status(), now=ten_s_in) == 30.0  # a quarter in 10 s: three quarters in 30 s
    assert eta_s(status(progress=0.0, frames_done=0), now=ten_s_in) is None


def test_format_duration() -> None:
    assert [format_duration(s) for s in (0, 7.4, 750, 3723)] == ["0:00", "0:07", "12:30", "1:02:03"]


def test_off_a_terminal_the_bar_prints_a_line_per_tenth_and_state() -> None:
    stream = io.StringIO()
    bar = ProgressBar("clip.mp4", stream)
    for done in (0, 1, 5, 25, 26, 100):
        state = "succeeded" if done == 100 else "running"
        bar(status(progress=done / 100, frames_done=done, eta_s=9.0, state=state))
    bar.done()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3  # 0-9 %, 20-29 %, succeeded
    assert (
        lines[1]
        == "clip.mp4  [#######---------------------]   25%  25/100 frames  ETA 0:09  running"
    )
    assert lines[2].endswith("100%  100/100 frames  succeeded")


def test_off_a_terminal_the_upload_bar_prints_a_line_per_tenth() -> None:
    stream = io.StringIO()
    bar = UploadBar("clip.mp4", stream)
    total = 10 * 2**20
    for sent in (65_536, 131_072, 2**20, 5 * 2**20 + 1, total):
        bar(sent, total)
    bar.done()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 4  # 0 %, 10 %, 50 %, 100 %
    assert lines[2] == "clip.mp4  [##############--------------]   50%  5.0/10.0 MiB  uploading"
    assert lines[3].endswith("100%  10.0/10.0 MiB  uploading")


def test_table_pads_columns_and_right_aligns_numbers() -> None:
    assert table(["label", "score"], [["YoYo", "0.912"], ["Punch", "0.05"]]).splitlines() == [
        "label  score",
        "-----  -----",
        "YoYo   0.912",
        "Punch   0.05",
    ]


def test_a_queued_job_shows_how_many_wait_ahead_of_it() -> None:
    waiting = {"state": "queued", "progress": 0.0, "frames_done": 0, "frames_total": 0}
    assert progress_line("clip.mp4", status(**waiting, queue_position=3)).endswith(
        "0%  queued (3 ahead)"
    )
    assert progress_line("clip.mp4", status(**waiting, queue_position=0)).endswith("0%  queued")
    assert progress_line("clip.mp4", status(**waiting)).endswith("0%  queued")  # older servers
    assert progress_line("clip.mp4", status(**waiting, workers_online=0)).endswith(
        "0%  queued (no worker is running)"
    )


def test_a_teach_job_counts_clips_not_frames() -> None:
    teaching = status(kind="teach", classifier="wave", style="", frames_done=3, frames_total=7)
    assert "3/6 clips" in progress_line("wave", teaching)
    training = status(kind="teach", style="", frames_done=6, frames_total=7, progress=6 / 7)
    assert "6/6 clips" in progress_line("wave", training)


def test_a_taught_classifier_shows_its_cross_validated_accuracy() -> None:
    entry = ClassifierEntry.from_json(
        {
            "name": "wave",
            "family": "custom",
            "display_name": "wave (taught from 7 clips)",
            "file": "wave.npz",
            "sha256": "0" * 64,
            "input_name": "clip",
            "output_name": "logits",
            "input": {},
            "labels": ["other", "wave"],
            "metrics": {
                "cross_validated_top1": 6 / 7,
                "cv_folds": 3,
                "per_class": {"other": 1.0, "wave": 0.75},
                "clips_per_label": {"other": 3, "wave": 4},
            },
        }
    )
    assert classifier_table(entry).splitlines() == [
        "wave: 2 labels, taught from 7 clips; cross-validated accuracy 85.7% (3 folds)",
        "",
        "label  clips  accuracy",
        "-----  -----  --------",
        "other      3    100.0%",
        "wave       4     75.0%",
    ]
