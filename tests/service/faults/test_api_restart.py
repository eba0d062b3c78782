"""The API process is restarted while a job runs: the job finishes, the new API serves it."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from tests.service.conftest import JobSettings, worker_env
from tests.service.jobs.test_stylize_jobs import finished
from tests.utils.data import AUDIO_CLIP
from tests.utils.processes import running_api, running_worker
from tests.utils.styles import SLOW_STYLE

JOB_TIMEOUT_S = 120


def wait_for_state(api: str, job_id: str, until: Callable[[dict], bool], timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = httpx.get(f"{api}/jobs/{job_id}", timeout=10).json()
        if until(status):
            return status
        time.sleep(0.1)
    raise TimeoutError(f"job {job_id} did not get there within {timeout_s} s: {status}")


def test_jobs_finish_across_an_api_restart(redis_url: str, job_settings: JobSettings) -> None:
    settings = job_settings(redis_url.rsplit("/", 1)[0] + "/2")  # a queue of its own
    env = worker_env(settings) | {"ACTIONSTYLE_TEMP_DIR": str(settings.temp_dir)}
    with running_worker(env, "restart"):
        with running_api(env) as first:
            with AUDIO_CLIP.open("rb") as clip:
                created = httpx.post(
                    f"{first}/stylize",
                    files={"file": (AUDIO_CLIP.name, clip)},
                    data={"style": SLOW_STYLE},
                    timeout=30,
                )
            assert created.status_code == 202, created.text
            job_id = created.json()["job_id"]
            running = wait_for_state(first, job_id, lambda s: s["frames_done"] > 0, JOB_TIMEOUT_S)
            assert running["state"] == "running"
            assert running["frames_done"] < running["frames_total"]
        # The first API is gone; a new process on another port takes over.
        with running_api(env) as second:
            final = wait_for_state(second, job_id, finished, JOB_TIMEOUT_S)
            assert final["state"] == "succeeded", final
            result = httpx.get(f"{second}/jobs/{job_id}/result", timeout=30)
    assert result.status_code == 200
    assert result.headers["content-type"] == "video/mp4"
    assert result.content[4:8] == b"ftyp"
