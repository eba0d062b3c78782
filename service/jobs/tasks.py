"""Celery tasks: thin wrappers that call the same plain functions the HTTP routes call.

app.send_task("actionstyle.classify_file", args=["/data/clip.avi", None, 3])
app.send_task("actionstyle.stylize_video", args=[job_id, video_path, "vangogh", None],
              kwargs={"request_id": "...", "strength": 0.5})   # request_id: the POST's id
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from contextlib import suppress
from functools import cache, partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import redis
from celery import Task, shared_task
from celery.exceptions import Reject, SoftTimeLimitExceeded
from kombu.exceptions import OperationalError

from service.contract.manifest import load_manifest
from service.custom.features import Encoder, load_encoder
from service.custom.submit import TEACH_TASK, release_name
from service.custom.teach import TeachContext, fail_teach_job, run_teach_job
from service.inference.classifier import classify, resolve_top_k
from service.inference.memory import release_freed_heap
from service.inference.registry import ModelRegistry, load_registry
from service.inference.styles import StyleEngines
from service.inference.temporal import SmoothingOptions
from service.jobs.reaper import Heartbeat
from service.jobs.state import REDIS_AWAY, JobState, JobStateUnavailable, JobStore
from service.jobs.storage import JobStorage, open_storage
from service.jobs.stylize import (
    OPENCV_THREADS,
    JobContext,
    StylizeRequest,
    fail_stylize_job,
    run_stylize_job,
)
from service.observability.logs import request_id_context
from service.observability.metrics import record_stylized
from service.settings import Settings
from service.video.transcode import TranscodeOptions

logger = logging.getLogger(__name__)


@cache
def _settings() -> Settings:
    return Settings()


@cache
def _registry() -> ModelRegistry:
    """Models load on a worker process's first job, once, then stay loaded."""
    settings = _settings()
    return load_registry(
        settings.models_dir,
        settings.ort_intra_op_threads,
        settings.open_set_thresholds,
        settings.open_set_min_top1,
        settings.ort_memory_arena,
        settings.openvino_classifier_names(),
    )


def _report(task: Task, stage: str) -> None:
    """Progress through task state; skipped when the task runs in-process, without a worker,
    and while Redis is away (the job's own state is what counts)."""
    if not (task.request.called_directly or task.request.is_eager):
        with suppress(*REDIS_AWAY):
            task.update_state(state="PROGRESS", meta={"stage": stage})


def worker_store(settings: Settings) -> JobStore:
    """A worker's job store: it waits out a Redis outage rather than lose a state change."""
    client = redis.Redis.from_url(
        settings.redis_url, socket_timeout=10, socket_connect_timeout=5, health_check_interval=30
    )
    return JobStore(
        client,
        settings.result_ttl_s,
        retry_s=settings.job_state_retry_s,
        heartbeat_ttl_s=settings.job_heartbeat_ttl_s,
    )


def _remembered(
    task: Task, store: JobStore, job_id: str, run: Callable[[], JobState | None]
) -> JobState | None:
    """Record the task that runs the job (so a reaper can send it again if this worker dies),
    then run the job."""
    request = task.request
    hard_s, soft_s = request.timelimit or (None, None)  # as sent; None: the worker's defaults
    args, kwargs = list(request.args or []), dict(request.kwargs or {})
    store.remember_task(job_id, task.name, args, kwargs, (soft_s, hard_s))
    return run()


@shared_task(name="actionstyle.classify_file", bind=True)
def classify_file(
    self: Task, path: str, model: str | None = None, top_k: int | None = None
) -> dict[str, Any]:
    """Classify the video at `path` (a file the worker can read); returns a ClassifyResponse.

    The API classifies in its own process and never sends this task: it is for pipelines that
    enqueue classification on the workers themselves (`send_task`, as the module doc shows).
    """
    _report(self, "loading models")
    classifier = _registry().classifier(model)
    count = resolve_top_k(top_k, classifier)
    _report(self, "classifying")
    result = classify(Path(path), classifier, count, _settings().decode_limits())
    return result.model_dump()


_JOB_PARTS_BUILT = threading.Lock()
# UCF101's frame size, the most common upload here: the style networks prepare per input size.
WARM_UP_FRAME = np.zeros((240, 320, 3), np.uint8)


def _job_parts() -> tuple[JobStore, JobStorage, StyleEngines]:
    """Built once per worker process (by its warm-up or its first stylize job), then kept."""
    with _JOB_PARTS_BUILT:  # the warm-up thread and a first job may ask at once
        return _build_job_parts()


def warm_up() -> list[str]:
    """Load and compile every named style and paint one frame with each, so that the first job
    of a worker process does not wait for it (~0.3 s of a 7.48 s clip's ~3.5 s job, per style;
    docs/benchmarks.md). Returns the styles made ready."""
    _, _, engines = _job_parts()
    names = list(engines.catalog.entries)
    for name in names:
        engines.named(name)([WARM_UP_FRAME])
    return names


@cache
def _build_job_parts() -> tuple[JobStore, JobStorage, StyleEngines]:
    settings = _settings()
    cv2.setNumThreads(OPENCV_THREADS)
    store = worker_store(settings)
    # Frames side by side or one frame on all threads: whichever the runtime paints faster
    # (settings.paint_parallelism).
    frames, threads_per_frame = settings.stylize_parallelism()
    logger.info(
        "style jobs paint %d frames at once (threads per frame: %d) on %s",
        frames,
        threads_per_frame,
        settings.style_runtime,
    )
    manifest = load_manifest(settings.models_dir)
    engines = StyleEngines(
        settings.models_dir,
        manifest,
        threads=threads_per_frame,
        runtime=settings.style_runtime,
        concurrent=frames,
    )
    return store, open_storage(settings), engines


@shared_task(name="actionstyle.stylize_video", bind=True)
def stylize_video(
    self: Task,
    job_id: str,
    video_path: str,
    style: str | None,
    style_image_path: str | None,
    request_id: str | None = None,
    strength: float = 1.0,
) -> str | None:
    """Stylise the job's video (a file in the job storage); returns the job's final state.

    The paths' last parts name the job's files in its storage (a shared folder or a bucket);
    `request_id` is the id of the POST that created the job, carried into every log line;
    `strength` blends the style with the original frames (1: the full style).
    """
    with request_id_context(request_id):
        return _stylize_video(self, job_id, video_path, style, style_image_path, strength)


def _stylize_video(
    self: Task,
    job_id: str,
    video_path: str,
    style: str | None,
    style_image_path: str | None,
    strength: float,
) -> str | None:
    settings = _settings()
    store, storage, engines = _job_parts()
    attempt = uuid.uuid4().hex
    context = JobContext(
        store=store,
        storage=storage,
        engines=engines,
        frames_in_flight=settings.stylize_parallelism()[0],
        transcode=TranscodeOptions(
            max_side=settings.stylize_max_side, batch_size=settings.stylize_batch_size
        ),
        smoothing=SmoothingOptions(blend=settings.stylize_smoothing)
        if settings.stylize_smoothing
        else None,
        worker=self.request.hostname or "",
        on_progress=lambda done, total: _report_frames(self, done, total),
        on_finished=lambda frames, seconds: _quietly(
            record_stylized, store.client, frames, seconds
        ),
    )
    request = StylizeRequest(
        job_id=job_id,
        video=Path(video_path),
        style=style,
        style_image=Path(style_image_path) if style_image_path else None,
        strength=strength,
    )
    try:
        return _run_attempt(
            self,
            store,
            job_id,
            attempt,
            partial(run_stylize_job, request, attempt, context),
            partial(fail_stylize_job, request, attempt, context),
            f"the job took longer than the limit of {_soft_time_limit_s(self, settings)} s",
            "internal error while stylising; the cause is in the log",
        )
    finally:
        storage.purge_older_than(settings.result_ttl_s)
        # A job frees its frames, queues and codec buffers in pieces glibc would keep resident.
        release_freed_heap()


def _run_attempt(
    task: Task,
    store: JobStore,
    job_id: str,
    attempt: str,
    work: Callable[[], JobState | None],
    fail: Callable[[str], object],
    too_long: str,
    crashed: str,
) -> str | None:
    """One attempt at a job, its heartbeat beating throughout; see `_final_state`. `fail`
    fails the job with a message and drops its files."""
    with Heartbeat(store, job_id, attempt):
        return _final_state(
            partial(_remembered, task, store, job_id, work), fail, too_long, crashed
        )


def _final_state(
    run: Callable[[], JobState | None],
    fail: Callable[[str], object],
    too_long: str,
    crashed: str,
) -> str | None:
    """Run a job; the state it ended in, or None when this attempt did not own it.

    Past the soft time limit the job fails with `too_long`. When Redis (job state, broker or
    result backend) went away for longer than the store retries, the job is not failed: the
    message goes back to the queue (and if even that fails, the job's stopped heartbeat lets a
    reaper queue it again). On any other error it fails with `crashed` and the error goes on
    up, so Celery logs it.
    """
    try:
        outcome = run()
    except SoftTimeLimitExceeded:
        fail(too_long)
        return JobState.FAILED.value
    except Exception as exc:
        if _redis_went_away(exc):
            raise Reject(f"redis went away: {exc}", requeue=True) from exc
        fail(crashed)
        raise
    return outcome.value if outcome else None


def _redis_went_away(exc: BaseException | None) -> bool:
    """Whether the error, or one that caused it, says Redis or the broker is unreachable."""
    while exc is not None:
        if isinstance(exc, (JobStateUnavailable, OperationalError, *REDIS_AWAY)):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _soft_time_limit_s(task: Task, settings: Settings) -> int:
    """The soft time limit this task runs under: its own (set from its video), else the
    workers' default."""
    _, soft_s = task.request.timelimit or (None, None)
    return int(soft_s) if soft_s else settings.job_soft_time_limit_s


def _quietly(record: Callable[..., object], *args: object) -> None:
    """A metric that can be lost while Redis is away; the job's result cannot."""
    with suppress(*REDIS_AWAY):
        record(*args)


def _report_frames(task: Task, done: int, total: int) -> None:
    if not (task.request.called_directly or task.request.is_eager):
        with suppress(*REDIS_AWAY):
            meta = {"frames_done": done, "frames_total": total}
            task.update_state(state="PROGRESS", meta=meta)


@cache
def _encoder() -> Encoder:
    """The feature encoder, loaded on a worker process's first teach job, then kept."""
    settings = _settings()
    manifest = load_manifest(settings.models_dir)
    return load_encoder(settings.models_dir, manifest, settings.worker_threads(), "per_session")


@cache
def _teach_parts() -> tuple[JobStore, JobStorage]:
    settings = _settings()
    return worker_store(settings), open_storage(settings)


@shared_task(name=TEACH_TASK, bind=True)
def teach_classifier(self: Task, job_id: str, request_id: str | None = None) -> str | None:
    """Teach a custom classifier from the job's clips (in the job storage); returns the job's
    final state. The work is service.custom.teach.run_teach_job."""
    settings = _settings()
    store, storage = _teach_parts()
    context = TeachContext(
        store=store,
        storage=storage,
        encoder=_encoder,
        limits=settings.decode_limits(),
        worker=self.request.hostname or "",
        release_name=lambda name, client: release_name(store.client, name, client),
        on_progress=lambda done, total: _report_frames(self, done, total),
    )
    attempt = uuid.uuid4().hex
    with request_id_context(request_id):
        return _run_attempt(
            self,
            store,
            job_id,
            attempt,
            partial(run_teach_job, job_id, attempt, context),
            partial(fail_teach_job, job_id, attempt, context),
            f"the job took longer than the limit of {_soft_time_limit_s(self, settings)} s",
            "internal error while teaching; see the log",
        )
