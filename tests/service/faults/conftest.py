"""Fixtures for the fault tests: a Redis each test may stop, settings that point at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from service.settings import Settings
from tests.utils.processes import RedisServer


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of this test's own, which it may stop and start (no append-only file)."""
    with RedisServer(tmp_path / "redis") as server:
        yield server


@pytest.fixture
def durable_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis that writes every change to an append-only file, and may be restarted."""
    with RedisServer(tmp_path / "redis", appendonly=True) as server:
        yield server


JobSettings = Callable[..., Settings]


@pytest.fixture
def job_settings(style_models_dir: Path, tmp_path: Path) -> JobSettings:
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
