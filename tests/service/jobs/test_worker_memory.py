"""A worker process whose memory peaked above its bound is replaced after its job; nothing lost."""

from __future__ import annotations

from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.service.conftest import JobSettings, worker_env
from tests.service.jobs.test_stylize_jobs import finished, submit, wait_for_job
from tests.utils.data import AUDIO_CLIP
from tests.utils.processes import running_worker
from tests.utils.styles import TEST_STYLE

# Logged once by each worker process, as it builds what jobs need (tasks._job_parts).
SET_UP = "style jobs paint"


def test_a_worker_process_over_its_memory_bound_is_replaced_after_each_job(
    redis_url: str, job_settings: JobSettings
) -> None:
    settings = job_settings(redis_url.rsplit("/", 1)[0] + "/6")  # a queue of its own
    bound = worker_env(settings) | {"ACTIONSTYLE_WORKER_MAX_MEMORY_MB": "1"}  # every job is over
    with running_worker(bound, "bounded") as (_, log), TestClient(create_app(settings)) as client:
        jobs = [submit(client, AUDIO_CLIP, TEST_STYLE)["job_id"] for _ in range(2)]
        for job_id in jobs:
            final = wait_for_job(client, job_id, finished, timeout_s=120)
            assert final["state"] == "succeeded", final
            assert client.get(f"/jobs/{job_id}/result").status_code == 200
        # A fresh process for the second: it set up (warm-up or first job) after the first job.
        first, second = sorted(log.text.index(f"job {job_id} succeeded") for job_id in jobs)
        assert SET_UP in log.text[first:second], log.text[-3000:]


def test_by_default_only_a_large_job_gets_its_worker_process_replaced() -> None:
    # 320x240 jobs peak near 0.3 GiB, a 1280x720 one near 1.1 GiB (docs/benchmarks.md).
    assert Settings().worker_max_memory_mb == 768
