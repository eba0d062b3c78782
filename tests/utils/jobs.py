"""Submitting stylize jobs and following them, over a TestClient or a real HTTP client."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

JOB_TIMEOUT_S = 120


def submit_job(
    client: Any, clip: Path, style: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """POST /stylize; asserts 202 and returns the body (job_id, status_url, result_url)."""
    with clip.open("rb") as video:
        response = client.post(
            "/stylize", files={"file": (clip.name, video)}, data={"style": style}, headers=headers
        )
    assert response.status_code == 202, response.text
    return response.json()


def is_finished(status: dict[str, Any]) -> bool:
    return status["state"] in {"succeeded", "failed", "cancelled"}


def wait_for_status(
    client: Any,
    job_id: str,
    until: Callable[[dict[str, Any]], bool] = is_finished,
    timeout_s: float = JOB_TIMEOUT_S,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Poll GET /jobs/{id} until `until(status)`, within `timeout_s`."""
    deadline, status = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        response = client.get(f"/jobs/{job_id}", headers=headers)
        assert response.status_code == 200, response.text
        status = response.json()
        if until(status):
            return status
        time.sleep(0.1)
    raise TimeoutError(f"job {job_id} did not get there within {timeout_s} s: {status}")


def json_lines(lines: list[str]) -> list[dict[str, Any]]:
    """The log lines that are JSON objects (a process may also print other things)."""
    entries = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def job_worker(redis_url: str, job_id: str) -> str | None:
    """The Celery hostname the job state records for the worker that ran the job."""
    import redis

    from service.jobs.state import JobStore

    return JobStore(redis.Redis.from_url(redis_url), ttl_s=60).worker(job_id)
