"""Fixtures for the hostile-input corpus: the real app, spooling and storing in a sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings


@dataclass
class Sandbox:
    """The app under attack and the only folders it may write to."""

    client: TestClient
    root: Path
    settings: Settings

    @property
    def temp_dir(self) -> Path:
        return self.settings.temp_dir

    @property
    def storage_dir(self) -> Path:
        return self.settings.storage_dir

    def files(self) -> list[Path]:
        """Every file under the sandbox, outside the folders the app may write to."""
        allowed = (self.temp_dir, self.storage_dir)
        return [
            path
            for path in self.root.rglob("*")
            if path.is_file() and not any(path.is_relative_to(folder) for folder in allowed)
        ]


def _sandbox(root: Path, models_dir: Path, redis_url: str, **limits) -> Iterator[Sandbox]:
    settings = Settings(
        models_dir=models_dir,
        temp_dir=root / "uploads",
        storage_dir=root / "storage",
        # A queue no worker reads: accepted jobs stay queued, and each test cancels its own.
        redis_url=redis_url.rsplit("/", 1)[0] + "/7",
        ort_intra_op_threads=1,
        **limits,
    )
    try:
        with TestClient(create_app(settings)) as client:
            yield Sandbox(client, root, settings)
    finally:
        redis.Redis.from_url(settings.redis_url).flushdb()


@pytest.fixture(scope="module")
def sandbox(
    style_models_dir: Path, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sandbox]:
    """The app with the default limits."""
    yield from _sandbox(tmp_path_factory.mktemp("hostile"), style_models_dir, redis_url)


# Low limits, so over-long and over-large uploads are refused in milliseconds.
LOW_LIMITS = {"max_duration_s": 2.0, "max_upload_bytes": 1024 * 1024}


@pytest.fixture(scope="module")
def strict_sandbox(
    style_models_dir: Path, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sandbox]:
    """The app with LOW_LIMITS."""
    root = tmp_path_factory.mktemp("hostile-strict")
    yield from _sandbox(root, style_models_dir, redis_url, **LOW_LIMITS)
