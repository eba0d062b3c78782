"""A full disk while an upload is received or moved into job storage: 503, and nothing kept.

Each test fills a small tmpfs (`tiny_filesystem`: mounting takes root, as in CI; else skipped).
"""

from __future__ import annotations

from pathlib import Path

import redis
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.utils.data import YOYO_CLIP
from tests.utils.disk import fill
from tests.utils.styles import TEST_STYLE


def own_database(redis_url: str) -> str:
    """A database no worker reads and no other test writes, emptied."""
    url = redis_url.rsplit("/", 1)[0] + "/12"
    redis.Redis.from_url(url).flushdb()
    return url


def client_for(style_models_dir: Path, redis_url: str, temp_dir: Path, storage_dir: Path):
    settings = Settings(
        models_dir=style_models_dir,
        temp_dir=temp_dir,
        storage_dir=storage_dir,
        redis_url=own_database(redis_url),
        ort_intra_op_threads=1,
    )
    return TestClient(create_app(settings))


def files_under(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.rglob("*") if path.is_file())


def assert_storage_full(response, what: str) -> None:
    assert response.status_code == 503, response.text
    assert response.json() == {
        "code": "storage_full",
        "detail": f"the server has no disk space left to keep {what}; try again in a few "
        "minutes, and tell its operator if this goes on",
    }


def test_no_room_to_receive_an_upload(
    style_models_dir: Path, redis_url: str, tmp_path: Path, tiny_filesystem: Path
) -> None:
    clip = YOYO_CLIP.read_bytes()
    fill(tiny_filesystem)
    with client_for(style_models_dir, redis_url, tiny_filesystem, tmp_path / "storage") as client:
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
        assert files_under(tiny_filesystem) == ["filler"]
        assert files_under(tmp_path / "storage") == []
        assert client.get("/readyz").status_code == 200  # the API itself is fine


def test_no_room_to_store_a_job(
    style_models_dir: Path, redis_url: str, tmp_path: Path, tiny_filesystem: Path
) -> None:
    uploads = tmp_path / "uploads"
    fill(tiny_filesystem)
    with client_for(style_models_dir, redis_url, uploads, tiny_filesystem) as client:
        response = client.post(
            "/stylize",
            files={"file": ("clip.avi", YOYO_CLIP.read_bytes())},
            data={"style": TEST_STYLE},
        )
        assert_storage_full(response, "the video for its job")
        assert files_under(tiny_filesystem) == ["filler"]  # the half-copied input is gone
        assert files_under(uploads) == []
    assert redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + "/12").dbsize() == 0  # no job
