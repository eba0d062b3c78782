"""The pieces of a stylize job, tested without a broker.

Job states in a real Redis, the storage folder, and the job function the Celery task calls.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from service.contract.manifest import load_manifest
from service.inference.styles import StyleEngines
from service.inference.temporal import SmoothingOptions
from service.jobs.celery_app import create_celery_app
from service.jobs.state import JobKind, JobState, JobStore
from service.jobs.storage import LocalStorage
from service.jobs.stylize import STOP_CHECK_S, JobContext, StylizeRequest, run_stylize_job
from service.jobs.tasks import stylize_video
from service.settings import Settings
from service.video.transcode import TranscodeOptions
from tests.utils.media import write_mjpg_avi
from tests.utils.styles import TEST_STYLE


@pytest.fixture
def store(redis_url: str) -> JobStore:
    return JobStore(redis.Redis.from_url(redis_url), ttl_s=600)


def new_id() -> str:
    return uuid.uuid4().hex


def test_a_cancelled_job_cannot_start_or_finish(store: JobStore) -> None:
    job_id = new_id()
    assert store.create(job_id, TEST_STYLE).state is JobState.QUEUED
    assert store.cancel(job_id) == (True, JobState.QUEUED)
    assert not store.start(job_id, "a", "w")
    assert not store.progress(job_id, "a", 1, 2, 1.0)
    assert not store.finish(job_id, "a", JobState.SUCCEEDED)
    record = store.get(job_id)
    assert record.state is JobState.CANCELLED and record.finished_at is not None
    assert store.cancel(job_id) == (False, JobState.CANCELLED)
    assert store.cancel(new_id()) == (False, None)


def test_a_job_says_its_kind_even_when_stored_before_kinds(store: JobStore) -> None:
    stylize, teach, older = new_id(), new_id(), new_id()
    store.create(stylize, TEST_STYLE)
    store.create(teach, "", kind=JobKind.TEACH, classifier="wave")
    assert (store.get(stylize).kind, store.get(stylize).classifier) == (JobKind.STYLIZE, "")
    assert (store.get(teach).kind, store.get(teach).classifier) == (JobKind.TEACH, "wave")
    # A teach job queued by an older API: no kind, no name, an empty style.
    store.client.hset(store.key(older), mapping={"state": "queued", "style": "", "created_at": 1})
    assert store.get(older).kind is JobKind.TEACH


def test_a_redelivered_job_belongs_to_its_newest_attempt(store: JobStore) -> None:
    job_id = new_id()
    store.create(job_id, TEST_STYLE)
    assert store.start(job_id, "first", "w1")
    assert store.progress(job_id, "first", 10, 100, 9.0)
    assert not store.start(job_id, "second", "w2")  # the first attempt's heartbeat beats
    store.client.delete(store.heartbeat_key(job_id))  # the first worker died: no more beats
    assert store.start(job_id, "second", "w2")  # the job came back
    assert not store.heartbeat(job_id, "first") and store.heartbeat(job_id, "second")
    assert not store.progress(job_id, "first", 20, 100, 8.0)
    assert not store.owned_by(job_id, "first") and store.owned_by(job_id, "second")
    assert store.progress(job_id, "second", 50, 100, 1.0)
    assert store.get(job_id).progress == 0.5
    assert store.finish(job_id, "second", JobState.SUCCEEDED)
    record = store.get(job_id)
    assert record.state is JobState.SUCCEEDED and record.progress == 1.0
    assert store.worker(job_id) == "w2"
    assert 0 < store.client.ttl(store.key(job_id)) <= 600
    assert not store.client.exists(store.heartbeat_key(job_id))
    assert job_id not in store.running_jobs()


@pytest.fixture
def line_store(redis_url: str) -> Iterator[JobStore]:
    """A store on a database of its own, so the queued jobs in it are this test's only."""
    client = redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + "/10")
    client.flushdb()
    yield JobStore(client, ttl_s=600)
    client.flushdb()


def test_a_queued_job_knows_its_place_in_the_line(line_store: JobStore) -> None:
    store = line_store
    first, second, third, fourth = (new_id() for _ in range(4))
    positions = [store.create(job, TEST_STYLE).queue_position for job in (first, second, third)]
    assert positions == [0, 1, 2]
    assert store.queued_count() == 3

    assert store.start(first, "a", "w")  # a worker took it: out of the line
    assert store.get(first).queue_position is None
    assert [store.get(job).queue_position for job in (second, third)] == [0, 1]

    assert store.cancel(second) == (True, JobState.QUEUED)
    assert store.get(second).queue_position is None
    assert store.get(third).queue_position == 0

    store.create(fourth, TEST_STYLE)
    store.client.delete(store.heartbeat_key(first))  # its worker died
    assert store.requeue(first, "a")  # its task is sent again, behind the others
    assert [store.get(job).queue_position for job in (third, fourth, first)] == [0, 1, 2]
    assert store.queued_count() == 3

    assert store.start(third, "b", "w") and store.finish(third, "b", JobState.SUCCEEDED)
    assert store.get(third).queue_position is None
    assert store.queued_count() == 2


def test_a_queued_job_says_how_many_workers_are_running(line_store: JobStore) -> None:
    store = line_store
    job = new_id()
    assert store.create(job, TEST_STYLE).workers_online == 0  # none: it would wait for ever
    store.announce_worker("w1@host", ttl_s=60)
    store.announce_worker("w2@host", ttl_s=0.3)
    assert store.workers_online() == 2 and store.get(job).workers_online == 2
    time.sleep(0.4)  # w2 stopped announcing itself (it died without a word)
    assert store.get(job).workers_online == 1
    store.forget_worker("w1@host")  # w1 shut down cleanly
    assert store.get(job).workers_online == 0
    assert store.start(job, "a", "w") and store.get(job).workers_online is None  # not queued


def test_jobs_that_left_the_line_unseen_are_dropped_from_it(line_store: JobStore) -> None:
    store = line_store
    expired, discarded, waiting = new_id(), new_id(), new_id()
    for job in (expired, discarded, waiting):
        store.create(job, TEST_STYLE)
    store.client.delete(store.key(expired))  # its record expired while it waited
    store.discard(discarded)  # its task could not be sent
    assert store.queued_count() == 2
    assert store.forget_stale_queued() == [expired]
    assert store.queued_count() == 1 and store.get(waiting).queue_position == 0


def test_a_job_expires_after_its_ttl(redis_url: str) -> None:
    store = JobStore(redis.Redis.from_url(redis_url), ttl_s=1)
    job_id = new_id()
    store.create(job_id, TEST_STYLE)
    deadline = time.monotonic() + 5
    while store.get(job_id) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert store.get(job_id) is None


def test_storage_keeps_jobs_apart_and_purges_old_ones(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "storage")
    old, fresh = new_id(), new_id()
    for job_id in (old, fresh):
        upload = tmp_path / f"{job_id}.avi"
        upload.write_bytes(b"video")
        assert storage.put(job_id, "input.avi", upload) == storage.path(job_id, "input.avi")
        assert not upload.exists()
    scratch = storage.scratch(fresh, "attempt")
    scratch.write_bytes(b"mp4")
    assert storage.commit_result(fresh, scratch) == storage.result(fresh)
    assert storage.result(old) is None
    long_ago = time.time() - 7200
    for path in (storage.path(old, "input.avi"), storage.path(old, "input.avi").parent):
        os.utime(path, (long_ago, long_ago))
    assert storage.purge_older_than(3600) == 1
    assert not storage.path(old, "input.avi").parent.exists()
    assert storage.result(fresh) is not None
    with pytest.raises(ValueError, match="is not a job id"):
        storage.path("../etc", "passwd")


@pytest.fixture
def context(store: JobStore, style_models_dir: Path, tmp_path: Path) -> JobContext:
    engines = StyleEngines(style_models_dir, load_manifest(style_models_dir), threads=1)
    return JobContext(
        store=store,
        storage=LocalStorage(tmp_path / "storage"),
        engines=engines,
        transcode=TranscodeOptions(batch_size=4),
        smoothing=SmoothingOptions(),
    )


def queued_job(context: JobContext, tmp_path: Path, style: str = TEST_STYLE) -> StylizeRequest:
    job_id = new_id()
    clip = write_mjpg_avi(tmp_path / f"{job_id}.avi", 64, 48, frames=10)
    video = context.storage.put(job_id, "input.avi", clip)
    context.store.create(job_id, style)
    return StylizeRequest(job_id=job_id, video=video, style=style)


def test_the_job_function_runs_without_a_broker(context: JobContext, tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    context.on_progress = lambda done, total: seen.append((done, total))
    request = queued_job(context, tmp_path)
    assert run_stylize_job(request, "attempt", context) is JobState.SUCCEEDED
    assert seen == [(4, 10), (8, 10), (10, 10)]
    assert context.storage.result(request.job_id) is not None
    assert not request.video.exists()  # the upload goes once the result is there
    record = context.store.get(request.job_id)
    assert (record.state, record.frames_done, record.frames_total) == (JobState.SUCCEEDED, 10, 10)


def test_a_job_cancelled_while_queued_is_skipped(context: JobContext, tmp_path: Path) -> None:
    request = queued_job(context, tmp_path)
    context.store.cancel(request.job_id)
    assert run_stylize_job(request, "attempt", context) is None
    assert not request.video.parent.exists()


def test_an_unknown_style_fails_the_job(context: JobContext, tmp_path: Path) -> None:
    request = queued_job(context, tmp_path, style="removed")
    assert run_stylize_job(request, "attempt", context) is JobState.FAILED
    assert context.store.get(request.job_id).error.startswith("unknown style 'removed'")


def test_a_job_whose_workers_keep_dying_fails(context: JobContext, tmp_path: Path) -> None:
    request = queued_job(context, tmp_path)
    for _ in range(3):  # three starts whose worker never came back
        context.store.count_attempt(request.job_id)
    assert run_stylize_job(request, "attempt", context) is JobState.FAILED
    assert context.store.get(request.job_id).error == (
        "the job was started 3 times and its worker stopped each time (out of memory?); "
        "try a shorter or smaller video"
    )


def test_the_task_has_an_explicit_name() -> None:
    assert stylize_video.name == "actionstyle.stylize_video"


def test_the_queue_is_configured_not_to_lose_jobs() -> None:
    settings = Settings(
        redis_url="redis://127.0.0.1:1/0",
        worker_concurrency=2,
        job_visibility_timeout_s=3600,
        job_redelivery_check_s=30,
    )
    conf = create_celery_app(settings).conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1 and conf.worker_concurrency == 2
    assert conf.accept_content == ["json"] and conf.task_serializer == "json"
    assert conf.broker_transport_options == {
        "visibility_timeout": 3600,
        "unacked_restore_interval": 30,
        "unacked_restore_throttle": 1,
    }
    assert conf.task_time_limit == settings.job_time_limit_s < 3600
    # Two worker processes share the cores instead of each taking all of them.
    assert settings.worker_threads() == max(1, (os.cpu_count() or 1) // 2)
    assert Settings(ort_intra_op_threads=3, worker_concurrency=2).worker_threads() == 3


@pytest.mark.parametrize(
    ("runtime", "threads", "asked", "frames_and_threads_each"),
    [
        ("onnxruntime", 2, 0, (2, 1)),  # a frame per thread
        ("openvino", 2, 0, (2, 1)),  # a frame per thread too
        ("onnxruntime", 4, 1, (1, 4)),
        ("openvino", 4, 2, (2, 2)),
        ("openvino", 1, 3, (3, 1)),
    ],
)
def test_a_worker_paints_as_its_runtime_paints_fastest_unless_told_otherwise(
    runtime: str, threads: int, asked: int, frames_and_threads_each: tuple[int, int]
) -> None:
    settings = Settings(
        ort_intra_op_threads=threads, stylize_frames_in_flight=asked, style_runtime=runtime
    )
    assert settings.stylize_parallelism() == frames_and_threads_each


def test_the_broker_can_be_another_than_the_job_state_redis() -> None:
    redis_url = "redis://127.0.0.1:1/0"
    assert create_celery_app(Settings(redis_url=redis_url)).conf.broker_url == redis_url
    rabbit = Settings(redis_url=redis_url, broker_url="amqp://user:pw@rabbit:5672//")
    conf = create_celery_app(rabbit).conf
    assert conf.broker_url == "amqp://user:pw@rabbit:5672//"
    assert conf.result_backend == redis_url  # results and job states stay in Redis


def test_a_job_asks_redis_whether_to_stop_a_few_times_a_second_not_every_frame(
    context: JobContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = queued_job(context, tmp_path)  # 10 frames, painted in well under STOP_CHECK_S
    asked = []
    owned_by = context.store.owned_by
    monkeypatch.setattr(
        context.store, "owned_by", lambda *args: asked.append(args) or owned_by(*args)
    )
    started = time.monotonic()
    assert run_stylize_job(request, "attempt", context) is JobState.SUCCEEDED
    assert len(asked) <= 1 + (time.monotonic() - started) / STOP_CHECK_S
