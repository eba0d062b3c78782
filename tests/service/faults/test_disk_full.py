"""A full disk while an upload is received or moved into job storage: 503, and nothing kept.

Each test mounts a tmpfs of a few hundred KiB, which takes root (as in CI); elsewhere it skips.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.utils.data import YOYO_CLIP
from tests.utils.styles import TEST_STYLE

DISK_BYTES = 256 * 1024  # the YoYo clip is 559 KB


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "small-disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def client_for(style_models_dir: Path, redis_url: str, temp_dir: Path, storage_dir: Path):
    settings = Settings(
        models_dir=style_models_dir,
        temp_dir=temp_dir,
        storage_dir=storage_dir,
        redis_url=redis_url.rsplit("/", 1)[0] + "/6",  # no worker reads it
        ort_intra_op_threads=1,
    )
    return TestClient(create_app(settings))


def files_under(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()]


def assert_storage_full(response, what: str) -> None:
    assert response.status_code == 503, response.text
    assert response.json() == {
        "code": "storage_full",
        "detail": f"the server has no disk space left to keep {what}; try again in a few "
        "minutes, and tell its operator if this goes on",
    }


def test_no_room_to_receive_an_upload(
    style_models_dir: Path, redis_url: str, tmp_path: Path, small_disk: Path
) -> None:
    clip = YOYO_CLIP.read_bytes()
    with client_for(style_models_dir, redis_url, small_disk, tmp_path / "storage") as client:
        assert_storage_full(
            client.post("/classify", files={"file": ("clip.avi", clip)}), "the upload"
        )
        assert_storage_full(
            client.post("/stylize", files={"file": ("clip.avi", clip)}, data={"style": TEST_STYLE}),
            "the upload",
        )
        teach = [("files", (f"{label}{i}.avi", clip)) for label in "ab" for i in range(3)]
        labels = {"name": "full", "labels": ["a"] * 3 + ["b"] * 3}
        assert_storage_full(
            client.post("/classifiers", files=teach, data=labels), "the training clips"
        )
        assert files_under(small_disk) == []
        assert files_under(tmp_path / "storage") == []
        assert client.get("/readyz").status_code == 200  # the API itself is fine


def test_no_room_to_store_a_job(
    style_models_dir: Path, redis_url: str, tmp_path: Path, small_disk: Path
) -> None:
    uploads = tmp_path / "uploads"
    with client_for(style_models_dir, redis_url, uploads, small_disk) as client:
        response = client.post(
            "/stylize",
            files={"file": ("clip.avi", YOYO_CLIP.read_bytes())},
            data={"style": TEST_STYLE},
        )
        assert_storage_full(response, "the video for its job")
        assert files_under(small_disk) == []  # the half-copied input is gone
        assert files_under(uploads) == []
    assert redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + "/6").dbsize() == 0  # no job
