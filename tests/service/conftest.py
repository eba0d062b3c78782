"""Fixtures for the service tests: the real exported models, real clips, the real app."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.utils.data import SHARED_DATA
from tests.utils.processes import closed_port, running_redis


def _require(path: Path, what: str) -> None:
    """Missing inputs fail in CI (they are part of the checkout) and skip elsewhere."""
    if path.exists():
        return
    message = f"{what} not found at {path}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def models_dir() -> Path:
    """The repo's exported_models/ (or the folder ACTIONSTYLE_MODELS_DIR names)."""
    path = Settings().models_dir
    _require(path / "manifest.json", "the exported model manifest")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    _require(SHARED_DATA, "the shared data folder")
    return SHARED_DATA


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server for the whole session."""
    with running_redis(tmp_path_factory.mktemp("redis")) as url:
        yield url


SettingsFactory = Callable[..., Settings]


@pytest.fixture
def make_settings(models_dir: Path, tmp_path: Path) -> SettingsFactory:
    """Settings for one test: uploads spooled under tmp_path, Redis unreachable unless given."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "models_dir": models_dir,
            "temp_dir": tmp_path / "uploads",
            "redis_url": f"redis://127.0.0.1:{closed_port()}/0",
            "ort_intra_op_threads": 1,
        }
        return Settings(**(values | overrides))

    return make


@pytest.fixture(scope="module")
def upload_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("uploads")


@pytest.fixture(scope="module")
def client(models_dir: Path, shared_data: Path, upload_dir: Path) -> Iterator[TestClient]:
    """The app with default limits, started once per module (loading models takes a moment)."""
    settings = Settings(
        models_dir=models_dir,
        temp_dir=upload_dir,
        redis_url=f"redis://127.0.0.1:{closed_port()}/0",
        ort_intra_op_threads=1,
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client
