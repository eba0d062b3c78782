"""The job storage fills up or cannot be written: the job ends `failed`, saying why."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from tests.service.conftest import JobSettings, worker_env
from tests.service.faults.test_redis_faults import post_stylize
from tests.service.jobs.test_stylize_jobs import finished, wait_for_job
from tests.utils.corpus import Audio, beeps, marked_frames, write_video
from tests.utils.data import AUDIO_CLIP
from tests.utils.disk import fill
from tests.utils.processes import running_worker


def test_a_full_disk_fails_the_job_with_a_message(
    redis_url: str, job_settings: JobSettings, tiny_filesystem: Path
) -> None:
    settings = job_settings(redis_url.rsplit("/", 1)[0] + "/3", storage_dir=tiny_filesystem)
    with TestClient(create_app(settings)) as client:
        created = post_stylize(client)
        assert created.status_code == 202, created.text
        fill(tiny_filesystem)  # the input is stored; the result will find no room
        with running_worker(worker_env(settings), "full"):
            final = wait_for_job(client, created.json()["job_id"], finished)
    assert final["state"] == "failed"
    assert final["error"] == "the result could not be written: No space left on device"


# Run apart: FFmpeg's MP4 muxer crashed the process when sent a packet after a failed write.
_TRANSCODE = """
import sys
from pathlib import Path
from service.video.transcode import TranscodeOptions, restyle_video
try:
    restyle_video(Path(sys.argv[1]), Path(sys.argv[2]), lambda batch: batch, TranscodeOptions())
except OSError as error:
    print(error)
"""


@pytest.mark.parametrize("sound", ["pcm_s16le", "aac"], ids=["encoded-again", "copied"])
def test_a_full_disk_fails_a_transcode_with_its_error(
    tiny_filesystem: Path, tmp_path: Path, sound: str
) -> None:
    frames = marked_frames(AUDIO_CLIP, 25, (96, 160))
    source = write_video(
        tmp_path / "clip.mov", frames, audio=Audio(sound, samples=beeps([0.3], 1.0))
    )
    fill(tiny_filesystem)
    run = subprocess.run(
        [sys.executable, "-c", _TRANSCODE, str(source), str(tiny_filesystem / "out.mp4")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "No space left on device" in run.stdout
    assert not list(tiny_filesystem.glob("*out.mp4*"))  # nor a partial file left behind


@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """`folder` bound read-only over itself: root cannot write there either (file modes would
    not stop root). Skips the test where mounting is not allowed."""
    bound = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True)
    if bound.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {bound.stderr.decode().strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True)
        yield
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_read_only_storage_fails_the_job_with_a_message(
    redis_url: str, job_settings: JobSettings
) -> None:
    settings = job_settings(redis_url.rsplit("/", 1)[0] + "/4")
    with TestClient(create_app(settings)) as client:
        created = post_stylize(client)
        assert created.status_code == 202, created.text
        with read_only(settings.storage_dir), running_worker(worker_env(settings), "ro"):
            final = wait_for_job(client, created.json()["job_id"], finished)
    assert final["state"] == "failed"
    assert final["error"] == "the result could not be written: Read-only file system"
