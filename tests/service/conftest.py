"""Fixtures for the service tests: the real exported models, real clips, the real app."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.utils.data import SHARED_DATA, require_path
from tests.utils.processes import OutputLog, closed_port, running_redis, running_worker
from tests.utils.styles import build_models_dir


@pytest.fixture(scope="session")
def models_dir() -> Path:
    """The repo's exported_models/ (or the folder ACTIONSTYLE_MODELS_DIR names)."""
    path = Settings().models_dir
    require_path(path / "manifest.json", "the exported model manifest")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    require_path(SHARED_DATA, "the shared data folder")
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


@pytest.fixture(scope="session")
def style_models_dir(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The exported models plus test styles (a small conv net, the Magenta arbitrary networks)."""
    return build_models_dir(tmp_path_factory.mktemp("models"), models_dir)


@dataclass
class JobStack:
    """The API in-process, a real Redis and a real Celery worker process sharing a storage dir."""

    settings: Settings
    client: TestClient
    worker_log: OutputLog

    @property
    def storage_dir(self) -> Path:
        return self.settings.storage_dir


def worker_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a worker process the same settings as `settings`."""
    return {
        "ACTIONSTYLE_MODELS_DIR": str(settings.models_dir),
        "ACTIONSTYLE_STORAGE_DIR": str(settings.storage_dir),
        "ACTIONSTYLE_REDIS_URL": str(settings.redis_url),
        "ACTIONSTYLE_ORT_INTRA_OP_THREADS": "1",
        # Two frames painted side by side, as a worker on 2 cores does by default, on one thread.
        "ACTIONSTYLE_STYLIZE_FRAMES_IN_FLIGHT": "2",
        "ACTIONSTYLE_JOB_VISIBILITY_TIMEOUT_S": str(settings.job_visibility_timeout_s),
        "ACTIONSTYLE_JOB_REDELIVERY_CHECK_S": str(settings.job_redelivery_check_s),
        "ACTIONSTYLE_STORAGE_URL": settings.storage_url,
        "ACTIONSTYLE_S3_ENDPOINT_URL": settings.s3_endpoint_url,
    }


@pytest.fixture(scope="session")
def job_stack(
    style_models_dir: Path, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[JobStack]:
    root = tmp_path_factory.mktemp("jobs")
    settings = Settings(
        models_dir=style_models_dir,
        storage_dir=root / "storage",
        temp_dir=root / "uploads",
        redis_url=redis_url,
        ort_intra_op_threads=1,
    )
    with (
        running_worker(worker_env(settings), "jobs") as (_, log),
        TestClient(create_app(settings)) as client,
    ):
        yield JobStack(settings, client, log)


JobSettings = Callable[..., Settings]


@pytest.fixture
def job_settings(style_models_dir: Path, tmp_path: Path) -> JobSettings:
    """Settings for a test's own API and workers: its folders, the test models, `redis_url`."""

    def make(redis_url: str, **overrides) -> Settings:
        values = {
            "models_dir": style_models_dir,
            "storage_dir": tmp_path / "storage",
            "temp_dir": tmp_path / "uploads",
            "redis_url": redis_url,
            "ort_intra_op_threads": 1,
        }
        return Settings(**(values | overrides))

    return make
