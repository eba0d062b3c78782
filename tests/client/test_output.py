"""What the command line prints: the progress bar's ETA and lines, durations, tables."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

from actionstyle_client.models import JobStatus
from actionstyle_client.output import ProgressBar, eta_s, format_duration, table


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


def test_table_pads_columns_and_right_aligns_numbers() -> None:
    assert table(["label", "score"], [["YoYo", "0.912"], ["Punch", "0.05"]]).splitlines() == [
        "label  score",
        "-----  -----",
        "YoYo   0.912",
        "Punch   0.05",
    ]
