"""No job is lost to a Redis outage or a dead worker (issue #16), without Docker.

Real redis-servers and real Celery worker processes, with a short heartbeat so a dead worker's
job is found in seconds; tests/deploy/test_compose_real.py does the same through docker compose.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from pathlib import Path

import av
import pytest
import redis
from fastapi.testclient import TestClient

from service.app import create_app
from service.custom.teach import PLAN_NAME, TeachContext, TeachPlan, TrainingClip, fail_teach_job
from service.jobs.reaper import Heartbeat, Reaper
from service.jobs.state import JobKind, JobState, JobStateUnavailable, JobStore
from service.jobs.storage import LocalStorage
from service.jobs.tasks import _final_state
from service.video.decode import DecodeLimits
from tests.service.conftest import JobSettings, worker_env
from tests.service.jobs.test_stylize_jobs import finished, submit, wait_for_job
from tests.utils.data import AUDIO_CLIP
from tests.utils.processes import RedisServer, running_worker, wait_until
from tests.utils.styles import SLOW_STYLE, TEST_STYLE

HEARTBEAT_TTL_S = 2.0
REAPER_INTERVAL_S = 0.5
OUTAGE_S = 32  # the issue asks for at least 30 s


def fast_recovery_env(settings) -> dict[str, str]:
    return worker_env(settings) | {
        "ACTIONSTYLE_JOB_HEARTBEAT_TTL_S": str(HEARTBEAT_TTL_S),
        "ACTIONSTYLE_JOB_REAPER_INTERVAL_S": str(REAPER_INTERVAL_S),
        "ACTIONSTYLE_JOB_STATE_RETRY_S": "90",
    }


def new_job(store: JobStore) -> str:
    job_id = uuid.uuid4().hex
    store.create(job_id, TEST_STYLE)
    return job_id


def test_state_changes_wait_for_redis_and_progress_is_skipped(
    durable_redis: RedisServer,
) -> None:
    own_redis = durable_redis  # append-only, as in docker-compose.yml: the job survives
    store = JobStore(redis.Redis.from_url(own_redis.url), ttl_s=600, retry_s=20)
    job_id = new_job(store)
    assert store.start(job_id, "a", "w")
    own_redis.stop()
    assert store.progress(job_id, "a", 1, 10, 5.0)  # skipped, and the job goes on
    assert store.owned_by(job_id, "a")  # assumed while Redis is away
    restart = threading.Timer(3.0, own_redis.start)
    restart.start()
    started = time.monotonic()
    assert store.finish(job_id, "a", JobState.SUCCEEDED)  # waits until Redis is back
    restart.join()
    assert time.monotonic() - started >= 2.5
    assert store.get(job_id).state is JobState.SUCCEEDED


def test_a_state_change_gives_up_after_its_retry_window(own_redis: RedisServer) -> None:
    store = JobStore(redis.Redis.from_url(own_redis.url), ttl_s=600, retry_s=1)
    job_id = new_job(store)
    assert store.start(job_id, "a", "w")
    own_redis.stop()
    with pytest.raises(JobStateUnavailable):
        store.finish(job_id, "a", JobState.SUCCEEDED)


def test_a_job_redis_dropped_is_handed_back_not_failed() -> None:
    """Past the retry window the task is rejected back to the queue; the job is never failed."""
    from celery.exceptions import Reject

    failed: list[str] = []

    def run() -> JobState | None:
        raise JobStateUnavailable("redis stayed away")

    with pytest.raises(Reject) as rejected:
        _final_state(run, failed.append, "too long", "crashed")
    assert rejected.value.requeue and failed == []
    with pytest.raises(ValueError):
        _final_state(lambda: (_ for _ in ()).throw(ValueError("bug")), failed.append, "", "x")
    assert failed == ["x"]


def test_the_reaper_queues_a_dead_attempts_job_once(own_redis: RedisServer) -> None:
    client = redis.Redis.from_url(own_redis.url)
    store = JobStore(client, ttl_s=600, heartbeat_ttl_s=0.5)
    sent: list[tuple] = []
    reaper = Reaper(store, lambda name, **kw: sent.append((name, kw)), interval_s=0.2)
    wait_until(reaper.redis_settled, 5, "redis up longer than a heartbeat")
    dead, alive, done = new_job(store), new_job(store), new_job(store)
    for job_id in (dead, alive, done):
        assert store.start(job_id, f"attempt-{job_id}", "w")
        # The dead job was sent with its own time limits (a long video's): sent again with them.
        limits = (1234, 1294) if job_id == dead else (None, None)
        args = [job_id, "in.mp4"]
        store.remember_task(job_id, "actionstyle.stylize_video", args, {"x": 1}, limits)
    assert store.finish(done, f"attempt-{done}", JobState.SUCCEEDED)
    with Heartbeat(store, alive, f"attempt-{alive}"):
        time.sleep(1.0)  # `dead` has no heartbeat thread: its beat expires
        assert reaper.sweep() == [dead]
        assert reaper.sweep() == []  # queued now: nothing more to do
    assert sent == [
        (
            "actionstyle.stylize_video",
            {
                "args": [dead, "in.mp4"],
                "kwargs": {"x": 1},
                "task_id": dead,
                "soft_time_limit": 1234,
                "time_limit": 1294,
            },
        )
    ]
    assert store.get(dead).state is JobState.QUEUED
    assert store.get(alive).state is JobState.RUNNING
    assert store.running_jobs() == [alive]
    # A sweep also drops a queued job whose record expired from the line.
    gone = new_job(store)
    client.delete(store.key(gone))
    assert store.queued_count() == 2
    reaper.sweep()
    assert store.queued_count() == 1 and store.get(dead).queue_position == 0
    # The new attempt claims the queued job; the dead one can no longer write.
    assert store.start(dead, "again", "w2")
    assert not store.finish(dead, f"attempt-{dead}", JobState.SUCCEEDED)
    assert store.finish(dead, "again", JobState.SUCCEEDED)


def test_a_worker_is_counted_while_its_reaper_runs(own_redis: RedisServer) -> None:
    store = JobStore(redis.Redis.from_url(own_redis.url), ttl_s=600)
    reaper = Reaper(store, lambda name, **kw: None, interval_s=0.2, name="w1@host")
    reaper.start()
    try:
        assert store.workers_online() == 1
        time.sleep(1.5)  # several sweeps: still announced, long past the first announcement
        assert store.workers_online() == 1
    finally:
        reaper.stop()
    assert store.workers_online() == 0


def check_result(client: TestClient, job_id: str, tmp_path: Path) -> None:
    response = client.get(f"/jobs/{job_id}/result")
    assert response.status_code == 200
    result = tmp_path / f"{job_id}.mp4"
    result.write_bytes(response.content)
    with av.open(str(result)) as output:
        assert output.streams.video[0].codec_context.name == "h264"
        assert sum(1 for _ in output.decode(video=0)) == 164
        assert len(output.streams.audio) == 1


def test_a_job_runs_through_a_redis_outage(
    durable_redis: RedisServer, job_settings: JobSettings, tmp_path: Path
) -> None:
    settings = job_settings(durable_redis.url)
    with (
        running_worker(fast_recovery_env(settings), "steady") as (_, log),
        TestClient(create_app(settings)) as client,
    ):
        job_id = submit(client, AUDIO_CLIP, SLOW_STYLE)["job_id"]
        wait_for_job(client, job_id, lambda s: s["frames_done"] > 0, timeout_s=60)
        durable_redis.stop()
        time.sleep(OUTAGE_S)
        durable_redis.start()
        final = wait_for_job(client, job_id, finished, timeout_s=120)
        assert final["state"] == "succeeded", (final, log.text[-3000:])
        assert final["frames_done"] == final["frames_total"] == 164
        check_result(client, job_id, tmp_path)


def test_a_killed_workers_job_runs_again_within_seconds(
    own_redis: RedisServer, job_settings: JobSettings, tmp_path: Path
) -> None:
    # The broker's own redelivery would wait an hour: only the heartbeat and reaper act here.
    settings = job_settings(own_redis.url, job_visibility_timeout_s=3600)
    env = fast_recovery_env(settings)
    with (
        running_worker(env, "first") as (first, _),
        running_worker(env, "second") as (second, _),
        TestClient(create_app(settings)) as client,
    ):
        workers = {"first": first, "second": second}
        job_id = submit(client, AUDIO_CLIP, SLOW_STYLE)["job_id"]
        wait_for_job(client, job_id, lambda s: s["frames_done"] > 0, timeout_s=60)
        store = JobStore(redis.Redis.from_url(own_redis.url), ttl_s=600)
        owner = store.worker(job_id).split("@")[0]
        os.killpg(workers[owner].pid, signal.SIGKILL)
        workers[owner].wait(timeout=10)
        killed_at = time.monotonic()

        survivor = "second" if owner == "first" else "first"
        wait_until(
            lambda: (store.worker(job_id) or "").startswith(survivor + "@"),
            HEARTBEAT_TTL_S + 15,
            "the job running again on the other worker",
        )
        rerun_after = time.monotonic() - killed_at
        final = wait_for_job(client, job_id, finished, timeout_s=120)
        assert final["state"] == "succeeded", final
        assert final["job_id"] == job_id
        assert int(store.client.hget(store.key(job_id), "attempts")) == 2
        assert int(store.client.hget(store.key(job_id), "requeues")) == 1
        print(f"re-run {rerun_after:.1f} s after the kill")
        check_result(client, job_id, tmp_path)
        assert [p.name for p in (settings.storage_dir / job_id).iterdir()] == ["result.mp4"]


def test_a_teach_job_failed_from_outside_drops_its_clips_and_frees_its_name(
    own_redis: RedisServer, tmp_path: Path
) -> None:
    # Past its time limit (or on a crash) a job is failed by the task around it, not by its
    # own code: that must tidy up as a failure inside does.
    store = JobStore(redis.Redis.from_url(own_redis.url), ttl_s=600)
    storage = LocalStorage(tmp_path / "storage")
    job_id = uuid.uuid4().hex
    store.create(job_id, "", "anonymous", kind=JobKind.TEACH, classifier="mine")
    clip = tmp_path / "clip.avi"
    clip.write_bytes(AUDIO_CLIP.read_bytes())  # put() moves its file in: never the shared clip
    storage.put(job_id, "clip-000.avi", clip)
    plan = TeachPlan("mine", "anonymous", [TrainingClip("yoyo", "clip-000.avi", "a.avi")])
    storage.put_bytes(job_id, PLAN_NAME, plan.to_bytes())
    assert store.start(job_id, "attempt", "w")
    freed: list[tuple[str, str]] = []
    context = TeachContext(
        store,
        storage,
        encoder=lambda: None,
        limits=DecodeLimits(),
        release_name=lambda *n: freed.append(n),
    )

    fail_teach_job(job_id, "attempt", context, "the job took longer than the limit of 1 s")

    record = store.get(job_id)
    assert record.state is JobState.FAILED
    assert record.error == "the job took longer than the limit of 1 s"
    assert not list((tmp_path / "storage" / job_id).glob("*"))
    assert freed == [("mine", "anonymous")]
