"""Nothing is lost when a worker dies: a job whose worker is SIGKILLed finishes on another one."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import av
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.jobs.queue import JobQueue
from service.settings import Settings
from tests.service.conftest import JobSettings, worker_env
from tests.service.jobs.test_stylize_jobs import finished, submit, wait_for_job
from tests.utils.data import AUDIO_CLIP
from tests.utils.processes import running_worker
from tests.utils.styles import TEST_STYLE

# Short, so the test need not wait an hour for the broker to hand the job out again.
VISIBILITY_TIMEOUT_S = 4


@pytest.fixture
def two_workers(
    redis_url: str, job_settings: JobSettings
) -> Iterator[tuple[Settings, dict[str, subprocess.Popen]]]:
    settings = job_settings(
        redis_url.rsplit("/", 1)[0] + "/1",  # a queue of its own
        job_visibility_timeout_s=VISIBILITY_TIMEOUT_S,
        job_redelivery_check_s=1,
    )
    env = worker_env(settings)
    with running_worker(env, "first") as (first, _), running_worker(env, "second") as (second, _):
        yield settings, {"first": first, "second": second}


def test_a_job_survives_its_worker_being_killed(two_workers, tmp_path: Path) -> None:
    settings, workers = two_workers
    with TestClient(create_app(settings)) as client:
        job_id = submit(client, AUDIO_CLIP, TEST_STYLE)["job_id"]
        wait_for_job(client, job_id, lambda s: s["frames_done"] > 0, timeout_s=60)
        store = JobQueue.from_settings(settings).store
        owner = store.worker(job_id).split("@")[0]
        os.killpg(workers[owner].pid, signal.SIGKILL)  # the worker and its pool child, at once
        workers[owner].wait(timeout=10)
        killed_at = time.monotonic()

        final = wait_for_job(client, job_id, finished, timeout_s=60)
        assert final["state"] == "succeeded", final
        survivor = "second" if owner == "first" else "first"
        assert store.worker(job_id).split("@")[0] == survivor
        assert final["frames_done"] == final["frames_total"] == 164
        assert time.monotonic() - killed_at < 60

        response = client.get(f"/jobs/{job_id}/result")
        assert response.status_code == 200
        result = tmp_path / "result.mp4"
        result.write_bytes(response.content)
        with av.open(str(result)) as output:
            assert output.streams.video[0].codec_context.name == "h264"
            assert sum(1 for _ in output.decode(video=0)) == 164
            assert len(output.streams.audio) == 1
        # The dead attempt's scratch files are gone with it.
        assert [p.name for p in (settings.storage_dir / job_id).iterdir()] == ["result.mp4"]
