"""Fixtures for the fault tests: a Redis each test may stop or restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

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
