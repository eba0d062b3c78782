"""Fixtures for the client tests: the real service (uvicorn, a Celery worker, Redis) with API keys.

One service for the client tests, its own Redis, keys and a stylize quota per key, so the
client meets the same 401s, 429s and Retry-After headers that a deployment gives.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from service.settings import Settings
from tests.service.conftest import worker_env
from tests.utils.data import REPO_ROOT, YOYO_CLIP, require_path
from tests.utils.media import write_mjpg_avi
from tests.utils.processes import running_api, running_redis, running_worker
from tests.utils.styles import build_models_dir
from tests.utils.teach import TRAINING_SET, YOYO_TEST_CLIP

CLIENT_DIR = REPO_ROOT / "client"
try:
    import actionstyle_client  # noqa: F401  (installed by `make test`: pip install -e ./client)
except ImportError:  # a venv made before the client existed: use the source tree
    sys.path.insert(0, str(CLIENT_DIR))

# One key per test that creates jobs, so quotas (per key and per minute) never meet.
KEYS = ("python-key", "cli-key", "quota-key", "folder-key", "cancel-key", "teach-key")
JOBS_PER_MINUTE = 3


@dataclass(frozen=True)
class LiveService:
    url: str
    redis_url: str

    def env(self, key: str) -> dict[str, str]:
        """The environment for an `actionstyle` subprocess talking to this service as `key`."""
        path = os.pathsep.join(filter(None, [str(CLIENT_DIR), os.environ.get("PYTHONPATH")]))
        return {
            **os.environ,
            "ACTIONSTYLE_URL": self.url,
            "ACTIONSTYLE_API_KEY": key,
            "PYTHONPATH": path,
            "PYTHONUNBUFFERED": "1",
        }


@pytest.fixture(scope="session")
def yoyo_clip() -> Path:
    require_path(YOYO_CLIP, "the YoYo clip of the shared data")
    return YOYO_CLIP


# Package scope: stopped once tests/client is done, not held through the rest of the suite.
@pytest.fixture(scope="package")
def live_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    exported = Settings().models_dir
    require_path(exported / "manifest.json", "the exported model manifest")
    root = tmp_path_factory.mktemp("client-service")
    models_dir = build_models_dir(root / "models", exported)
    (root / "redis").mkdir()
    with running_redis(root / "redis") as redis_url:
        settings = Settings(
            models_dir=models_dir,
            storage_dir=root / "storage",
            temp_dir=root / "uploads",
            redis_url=redis_url,
            ort_intra_op_threads=1,
        )
        env = worker_env(settings) | {
            "ACTIONSTYLE_TEMP_DIR": str(settings.temp_dir),
            "ACTIONSTYLE_API_KEYS": ",".join(KEYS),
            "ACTIONSTYLE_STYLIZE_JOBS_PER_MINUTE": str(JOBS_PER_MINUTE),
        }
        with running_worker(env, "client"), running_api(env) as url:
            yield LiveService(url, redis_url)


@pytest.fixture(scope="session")
def training_set() -> dict[str, list[Path]]:
    """Three real clips of each of two UCF101 actions (tests/utils/teach.py)."""
    for path in [*TRAINING_SET["yoyo"], *TRAINING_SET["punch"], YOYO_TEST_CLIP]:
        require_path(path, "the UCF101 clips of the shared data")
    return TRAINING_SET


@pytest.fixture(scope="session")
def tiny_clips(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three 1-second MJPEG clips (96x64): a job on one takes well under a second."""
    folder = tmp_path_factory.mktemp("tiny")
    return [write_mjpg_avi(folder / f"tiny{i}.avi", 96, 64, frames=25) for i in range(3)]


def not_at_a_minute_boundary() -> None:
    """The quota is a fixed one-minute window: do not fill it in its last seconds."""
    left = 60 - time.time() % 60
    if left < 5:
        time.sleep(left + 0.1)
