"""The `actionstyle` command as a script runs it: output, exit codes, Ctrl-C, folders, teach."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from actionstyle_client import Client, JobState

from tests.client.conftest import LiveService
from tests.utils.processes import OutputLog, closed_port, wait_until
from tests.utils.styles import SLOW_STYLE, TEST_STYLE
from tests.utils.teach import YOYO_TEST_CLIP

COMMAND_TIMEOUT_S = 120


def actionstyle(
    live_service: LiveService, *args: str | Path, key: str = "cli-key"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "actionstyle_client", *map(str, args)],
        env=live_service.env(key),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
    )


def test_classify_prints_a_table_or_json(live_service: LiveService, yoyo_clip: Path) -> None:
    shown = actionstyle(live_service, "classify", yoyo_clip, "--top-k", "3")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith(f"{yoyo_clip}: ")
    assert "187 frames" in lines[1]
    assert lines[3].split() == ["label", "score"]
    assert len(lines) == 4 + 1 + 3  # title, details, blank, header, rule, three labels

    as_json = actionstyle(live_service, "classify", yoyo_clip, "--segments", "--json")
    assert as_json.returncode == 0, as_json.stderr
    answer = json.loads(as_json.stdout)
    assert answer["video"]["frames"] == 187
    assert answer["segments"][0]["start_s"] == 0.0


def test_classify_many_clips_prints_a_row_or_a_json_line_each(
    live_service: LiveService, yoyo_clip: Path, tiny_clips: list[Path], tmp_path: Path
) -> None:
    folder = tmp_path / "clips"
    folder.mkdir()
    (folder / "a_yoyo.avi").write_bytes(yoyo_clip.read_bytes())
    (folder / "b_notes.mp4").write_text("not a video\n" * 50)  # refused, the rest goes on
    (folder / "readme.txt").write_text("not a clip: left alone")
    shown = actionstyle(live_service, "classify", folder, tiny_clips[0])
    assert shown.returncode == 1, shown.stderr  # one was refused
    rows = shown.stdout.splitlines()
    assert rows[0].split()[:3] == ["clip", "label", "score"]
    assert [row.split()[0] for row in rows[1:]] == [
        str(folder / "a_yoyo.avi"),
        str(folder / "b_notes.mp4"),
        str(tiny_clips[0]),
    ]
    _, label, score, confident = rows[1].split()
    assert (label, confident) == ("YoYo", "yes") and 0.2 < float(score) <= 1
    assert "refused: the file is text, not a video" in rows[2]
    assert "2 classified, 1 refused" in shown.stderr

    as_json = actionstyle(live_service, "classify", folder, "--json", "--top-k", "2")
    answers = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [a["file"] for a in answers] == [str(folder / "a_yoyo.avi"), str(folder / "b_notes.mp4")]
    assert answers[0]["top_label"] == "YoYo" and len(answers[0]["predictions"]) == 2
    assert answers[1]["error"]["code"] == "unsupported_media_type"

    bad_parameter = actionstyle(live_service, "classify", folder, "--top-k", "0")
    assert bad_parameter.returncode == 1 and "invalid_parameter" in bad_parameter.stderr
    assert len(bad_parameter.stdout.splitlines()) == 1  # the header: stopped at the first


def test_models_lists_the_styles(live_service: LiveService) -> None:
    shown = actionstyle(live_service, "models")
    assert shown.returncode == 0, shown.stderr
    assert re.search(rf"^{TEST_STYLE}\s", shown.stdout, re.MULTILINE)
    assert "(default)" in shown.stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["classify", "{text}"], 1, "(415 unsupported_media_type)"),
        (["classify", "{missing}"], 2, "no such file"),
        (["stylize", "{tiny}", "--style", "no_such_style"], 1, "unknown_style"),
        (["stylize", "{tiny}"], 2, "give one of --style NAME or --style-image PAINTING"),
        (
            ["stylize", "{tiny}", "--style", TEST_STYLE, "--strength", "0"],
            2,
            "--strength must be above 0 and at most 1, not 0.0",
        ),
        (["classify"], 2, "the following arguments are required: FILE"),
        (["classify", "{tiny}", "{missing}"], 2, "no such file or folder"),
        (["classify", "{empty_folder}"], 2, "holds no video (.3g2, .3gp, .asf, .avi"),
        (["teach", "x"], 2, "give a folder of <label>/<clip> folders, a ZIP of them, or --clips"),
        (["teach", "x", "--clips", "{tiny}"], 2, "--clips takes LABEL=PATH (a clip or a folder)"),
        (["teach", "x", "{missing}"], 2, "no such folder"),
        (["classifiers", "delete", "nobody"], 1, "(404 classifier_not_found)"),
        (["--retries", "0", "--url", "http://127.0.0.1:{port}", "models"], 3, "did not answer"),
        (
            ["--retries", "1", "--url", "http://127.0.0.1:{port}", "models"],
            3,
            "did not answer (ConnectError); trying again in",
        ),
    ],
    ids=[
        "not-a-video",
        "missing-file",
        "unknown-style",
        "no-style",
        "strength-0",
        "usage",
        "classify-many-missing",
        "classify-empty-folder",
        "teach-nothing",
        "teach-no-label",
        "teach-no-folder",
        "delete-unknown",
        "unreachable",
        "unreachable-told",
    ],
)
def test_exit_codes(
    live_service: LiveService,
    tiny_clips: list[Path],
    tmp_path: Path,
    args: list[str],
    code: int,
    message: str,
) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 50)
    values = {"text": text, "missing": tmp_path / "gone.mp4", "tiny": tiny_clips[0]}
    values["empty_folder"] = tmp_path / "only_notes"
    values["empty_folder"].mkdir()
    (values["empty_folder"] / "readme.txt").write_text("no clips here")
    values["port"] = closed_port()
    ran = actionstyle(live_service, *[arg.format(**values) for arg in args])
    assert ran.returncode == code, ran.stderr
    assert message in ran.stderr


def test_teach_from_a_folder_then_classify_and_delete(
    live_service: LiveService, training_set: dict[str, list[Path]], tmp_path: Path
) -> None:
    clips = tmp_path / "clips"
    for label, paths in training_set.items():
        (clips / label).mkdir(parents=True)
        for path in paths:
            (clips / label / path.name).symlink_to(path)
    (clips / "notes.txt").write_text("not a label")
    (clips / "yoyo" / "notes.txt").write_text("not a clip")

    taught = actionstyle(live_service, "teach", "cli-taught", clips, key="teach-key")
    assert taught.returncode == 0, taught.stderr
    lines = taught.stdout.splitlines()
    assert re.fullmatch(
        r"cli-taught: 2 labels, taught from 6 clips; cross-validated accuracy "
        r"\d+\.\d% \(3 folds\)",
        lines[0],
    ), taught.stdout
    assert [line.split()[:2] for line in lines[4:]] == [["punch", "3"], ["yoyo", "3"]]
    assert re.search(r"job [0-9a-f]{32} queued", taught.stderr)
    assert re.search(r"\[#{28}\]\s+100%\s+6/6 clips\s+succeeded", taught.stderr), taught.stderr

    classified = actionstyle(
        live_service, "classify", YOYO_TEST_CLIP, "--model", "cli-taught", key="teach-key"
    )
    assert classified.returncode == 0, classified.stderr
    assert classified.stdout.startswith(f"{YOYO_TEST_CLIP}: yoyo")

    deleted = actionstyle(live_service, "classifiers", "delete", "cli-taught", key="teach-key")
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stderr == "actionstyle: classifier cli-taught deleted\n"
    again = actionstyle(live_service, "classifiers", "show", "cli-taught", key="teach-key")
    assert again.returncode == 1 and "(404 classifier_not_found)" in again.stderr


def test_a_bad_key_exits_1_with_the_servers_words(live_service: LiveService) -> None:
    ran = actionstyle(live_service, "models", key="wrong-key")
    assert ran.returncode == 1
    expected = "the X-API-Key header does not hold a valid API key (401 api_key_required)"
    assert ran.stderr.strip() == f"actionstyle: {expected}"


def test_stylize_one_clip_with_a_progress_bar(
    live_service: LiveService, tiny_clips: list[Path], tmp_path: Path
) -> None:
    out = tmp_path / "out.mp4"
    args = ["stylize", tiny_clips[1], "--style", TEST_STYLE, "--strength", "0.7", "-o", out]
    ran = actionstyle(live_service, *args)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == str(out)
    assert out.read_bytes()[4:8] == b"ftyp"
    assert re.search(r"job [0-9a-f]{32} queued", ran.stderr)
    size = tiny_clips[1].stat().st_size / 2**20
    uploaded = rf"\[#{{28}}\]\s+100%\s+{size:.1f}/{size:.1f} MiB\s+uploading"
    assert re.search(uploaded, ran.stderr), ran.stderr
    assert re.search(r"\[#{28}\]\s+100%\s+25/25 frames\s+succeeded", ran.stderr), ran.stderr


def test_ctrl_c_cancels_the_running_job(
    live_service: LiveService, yoyo_clip: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.mp4"
    argv = [sys.executable, "-m", "actionstyle_client", "stylize", str(yoyo_clip)]
    argv += ["--style", SLOW_STYLE, "-o", str(out)]
    process = subprocess.Popen(
        argv, env=live_service.env("cancel-key"), stderr=subprocess.PIPE, text=True
    )
    log = OutputLog(process.stderr)
    try:
        wait_until(lambda: "queued" in log.text, 60, "the job queued")
        job_id = re.search(r"job ([0-9a-f]{32}) queued", log.text).group(1)
        with Client(live_service.url, "cancel-key") as client:
            wait_until(lambda: client.jobs.get(job_id).frames_done > 0, 60, "the job running")
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=30) == 130, log.text
            assert f"job {job_id} cancelled" in log.text
            assert client.jobs.get(job_id).state == JobState.CANCELLED
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert not out.exists()


def test_a_folder_runs_several_jobs_and_resumes(
    live_service: LiveService, tiny_clips: list[Path], tmp_path: Path
) -> None:
    src, out = tmp_path / "clips", tmp_path / "out"
    src.mkdir(), out.mkdir()
    for clip in tiny_clips:
        (src / clip.name).symlink_to(clip)
    (src / "notes.txt").write_text("not a clip")
    done_before = out / f"{tiny_clips[0].stem}.mp4"
    done_before.write_bytes(b"an earlier run's result")

    first = actionstyle(
        live_service,
        "stylize",
        src,
        "--style",
        TEST_STYLE,
        "-o",
        out,
        "--jobs",
        "2",
        key="folder-key",
    )
    assert first.returncode == 0, first.stderr
    assert sorted(p.name for p in out.iterdir()) == [f"{c.stem}.mp4" for c in tiny_clips]
    assert done_before.read_bytes() == b"an earlier run's result"  # skipped, not redone
    for clip in tiny_clips[1:]:
        assert (out / f"{clip.stem}.mp4").read_bytes()[4:8] == b"ftyp"
    assert f"{tiny_clips[0].name}: already done, skipped" in first.stderr
    assert "2 done, 1 skipped, 0 failed" in first.stderr
    # Both jobs were queued before the first result came back: two in flight.
    events = [line for line in first.stderr.splitlines() if "queued" in line or "->" in line]
    assert ["queued" in line for line in events[:2]] == [True, True], first.stderr

    again = actionstyle(
        live_service, "stylize", src, "--style", TEST_STYLE, "-o", out, key="folder-key"
    )
    assert again.returncode == 0, again.stderr
    assert "0 done, 3 skipped, 0 failed" in again.stderr
