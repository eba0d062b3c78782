"""A held `GET /jobs/{id}?wait=` wakes on the job's announced end, not by reading it over and over.

The worker process (or the API, for a cancel) publishes the end through Redis; the API's one
subscription wakes the waiting request. Without the announcement a waiting request still reads
its job once a second, so a lost message or an absent Redis costs time, never the answer.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import pytest
import redis

from service.api import jobs as jobs_api
from service.jobs.ends import JobEnds
from service.jobs.state import ENDED_CHANNEL
from tests.service.conftest import JobStack
from tests.service.jobs.test_stylize_jobs import running_with_progress, submit, wait_for_job
from tests.utils.data import AUDIO_CLIP
from tests.utils.processes import closed_port
from tests.utils.styles import SLOW_STYLE


def test_a_held_status_wakes_when_the_worker_ends_the_job(
    job_stack: JobStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = job_stack.client
    job_id = submit(client, AUDIO_CLIP, SLOW_STYLE)["job_id"]
    wait_for_job(client, job_id, running_with_progress, timeout_s=60)
    # Reads far apart, so that only the announcement can explain a prompt answer.
    monkeypatch.setattr(jobs_api, "CHECK_S", 5.0)
    jobs = client.app.state.jobs
    reads = []
    read = jobs.status
    monkeypatch.setattr(jobs, "status", lambda *args: reads.append(1) or read(*args))

    asked = time.monotonic()
    ended = client.get(f"/jobs/{job_id}", params={"wait": 30})
    held_s = time.monotonic() - asked
    answered = datetime.now().astimezone()

    assert ended.status_code == 200 and ended.json()["state"] == "succeeded", ended.text
    finished_at = datetime.fromisoformat(ended.json()["finished_at"])
    assert (answered - finished_at).total_seconds() < 0.5  # woken, not found at the next read
    assert held_s > 1.0  # the job ran a while: a request polling every 0.1 s would read 10+ times
    assert len(reads) <= held_s / 5.0 + 2


def _announced_within(ends: JobEnds, publish, seconds: float) -> bool:
    async def scenario() -> bool:
        listening = asyncio.create_task(ends.listen())
        try:
            with ends.watch("a" * 32) as ended:
                await asyncio.sleep(0.3)  # the subscription is set up
                publish()
                try:
                    await asyncio.wait_for(ended.wait(), seconds)
                except TimeoutError:
                    return False
                return True
        finally:
            listening.cancel()
            await asyncio.gather(listening, return_exceptions=True)

    return asyncio.run(scenario())


def test_an_announced_end_wakes_only_its_own_waiters(redis_url: str) -> None:
    publisher = redis.Redis.from_url(redis_url)
    ends = JobEnds(redis_url)
    assert _announced_within(ends, lambda: publisher.publish(ENDED_CHANNEL, "a" * 32), 1.0)
    assert not _announced_within(ends, lambda: publisher.publish(ENDED_CHANNEL, "b" * 32), 0.5)
    assert not ends._waiting  # nothing left behind by the requests that stopped watching


def test_without_redis_the_listener_waits_quietly_for_it() -> None:
    ends = JobEnds(f"redis://127.0.0.1:{closed_port()}/0")
    assert not _announced_within(ends, lambda: None, 1.5)  # no error, no wake-up
