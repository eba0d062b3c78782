"""The API's side of jobs: submit a stylize job; look up, fetch the result of, cancel any job.

The route handlers call these plain methods; the worker side is `service.jobs.stylize`.

    jobs = JobQueue.from_settings(settings)
    record = jobs.submit(video, style="vangogh", painting=None, styles=registry.styles)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path, PurePosixPath

import cv2
import numpy as np
import redis
from celery import Celery
from kombu.exceptions import OperationalError

from service.inference.styles import StyleCatalog
from service.jobs.celery_app import create_celery_app
from service.jobs.state import JobKind, JobRecord, JobState, JobStore
from service.jobs.storage import JobStorage, RemoteFile, open_storage
from service.observability.logs import current_request_id
from service.settings import Settings
from service.video.upload import FormField, ReceivedVideo, StorageFull, room_on_disk

STYLIZE_TASK = "actionstyle.stylize_video"
PAINTING = "painting"
_MAX_PAINTING_PIXELS = 64_000_000


class InvalidStyleChoice(ValueError):
    """Neither a style nor a painting was given, or both were."""


class InvalidStyleImage(ValueError):
    """The painting uploaded as the style is not a readable image."""


class JobNotFound(LookupError):
    """No job has this id, or it expired."""


class JobNotFinished(RuntimeError):
    """The job has no result yet."""


class JobHasNoResult(RuntimeError):
    """The job failed or was cancelled: it never will have a result."""


class ResultIsClassifier(RuntimeError):
    """A teach job's result is a classifier (GET /classifiers/{name}), never a video."""


class JobAlreadyFinished(RuntimeError):
    """A finished job cannot be cancelled."""


class QueueUnavailable(RuntimeError):
    """Redis (the queue and the job states) does not answer."""


class QueueFull(RuntimeError):
    """As many jobs as the service takes are already waiting for a worker."""

    RETRY_AFTER_S = 60

    def __init__(self, waiting: int) -> None:
        jobs = "1 job is" if waiting == 1 else f"{waiting} jobs are"
        super().__init__(
            f"{jobs} already waiting for a worker, the most this service queues; "
            "try again in a minute or two"
        )
        self.headers = {"Retry-After": str(self.RETRY_AFTER_S)}


@contextmanager
def _queue_errors() -> Iterator[None]:
    try:
        yield
    except (redis.RedisError, OperationalError) as exc:
        raise QueueUnavailable(f"the job queue is unavailable: {exc}") from exc


def source_name(filename: str) -> str:
    """An upload's file name as a result's name starts: no folders, extension or control
    characters, at most 100 characters; '' when the upload had no name."""
    stem = PurePosixPath(PurePosixPath(filename.replace("\\", "/")).name).stem
    return "".join(ch for ch in stem if ch.isprintable()).strip(" .")[:100]


def check_painting(field: FormField) -> np.ndarray:
    """Refuse a painting OpenCV cannot decode, before any job is queued; returns it (BGR)."""
    array = np.frombuffer(field.data, np.uint8)
    image = cv2.imdecode(array, cv2.IMREAD_COLOR) if array.size else None
    if image is None:
        raise InvalidStyleImage(
            "the style painting is not an image we can read; upload a JPEG, PNG or WebP"
        )
    if image.shape[0] * image.shape[1] > _MAX_PAINTING_PIXELS:
        raise InvalidStyleImage("the style painting is too large; send one under 64 megapixels")
    return image


def check_style_choice(
    style: str | None, painting: FormField | None, styles: StyleCatalog
) -> np.ndarray | None:
    """Refuse anything but exactly one known style or one readable painting (returned, BGR)."""
    if style is not None and painting is None:
        styles.style(style)
        return None
    if painting is not None and style is None:
        styles.require_arbitrary()
        return check_painting(painting)
    raise InvalidStyleChoice(
        "send either the form field 'style' (a name from GET /models) or a "
        "'style_image' file with your own painting" + (", not both" if style is not None else "")
    )


class JobQueue:
    def __init__(self, store: JobStore, storage: JobStorage, celery: Celery, ttl_s: int) -> None:
        self.store, self.storage, self.celery, self.ttl_s = store, storage, celery, ttl_s

    @classmethod
    def from_settings(cls, settings: Settings) -> JobQueue:
        client = redis.Redis.from_url(
            settings.redis_url,
            socket_timeout=5,
            socket_connect_timeout=settings.readiness_timeout_s,
        )
        return cls(
            JobStore(client, settings.result_ttl_s),
            open_storage(settings),
            create_celery_app(settings),
            settings.result_ttl_s,
        )

    def submit(
        self,
        video: ReceivedVideo,
        style: str | None,
        painting: FormField | None,
        styles: StyleCatalog,
        client: str = "",
        strength: float = 1.0,
        time_limits: tuple[int, int] | None = None,
    ) -> JobRecord:
        """Check the style, move the upload into storage, record the job and queue it.

        `strength` (already checked by `parse_strength`) blends the style with the original;
        `time_limits` (soft, hard seconds; `stylize_time_limits`) replace the workers' defaults.
        """
        check_style_choice(style, painting, styles)
        job_id = uuid.uuid4().hex
        try:
            with room_on_disk("the video for its job"):
                video_path = self.storage.put(job_id, f"input{video.path.suffix}", video.path)
                painting_path = self._save_painting(job_id, painting)
        except StorageFull:
            self.storage.delete(job_id)
            raise
        try:
            with _queue_errors():
                record = self.store.create(
                    job_id, style or PAINTING, client, strength, source=source_name(video.filename)
                )
                soft_s, hard_s = time_limits or (None, None)
                self.celery.send_task(
                    STYLIZE_TASK,
                    args=[job_id, str(video_path), style, painting_path],
                    kwargs={"request_id": current_request_id(), "strength": strength},
                    task_id=job_id,
                    soft_time_limit=soft_s,
                    time_limit=hard_s,
                )
        except QueueUnavailable:
            self.storage.delete(job_id)
            with suppress(redis.RedisError):
                self.store.discard(job_id)
            raise
        self.storage.purge_older_than(self.ttl_s)
        return record

    def _save_painting(self, job_id: str, painting: FormField | None) -> str | None:
        if painting is None:
            return None
        return str(self.storage.put_bytes(job_id, "style.img", painting.data))

    def check_room(self, max_queued: int) -> None:
        """Refuse a new job while `max_queued` jobs wait (0: no limit), before its upload."""
        if not max_queued:
            return
        with _queue_errors():
            waiting = self.store.queued_count()
        if waiting >= max_queued:
            raise QueueFull(waiting)

    def status(self, job_id: str, client: str = "") -> JobRecord:
        """The job's record; another API key's job is reported as unknown, so ids do not leak."""
        with _queue_errors():
            record = self.store.get(job_id)
        if record is None or record.client != client:
            raise JobNotFound(f"no job '{job_id}': the id is unknown or the job has expired")
        return record

    def result(self, job_id: str, client: str = "") -> tuple[Path | RemoteFile, str]:
        """The stylised video, and the name it downloads as."""
        record = self.status(job_id, client)
        if record.kind is JobKind.TEACH:
            raise ResultIsClassifier(_where_the_classifier_is(record))
        if record.state in (JobState.QUEUED, JobState.RUNNING):
            raise JobNotFinished(
                f"job '{job_id}' is {record.state.value} ({record.progress:.0%}); "
                "its result is ready once the state is 'succeeded'"
            )
        if record.state is not JobState.SUCCEEDED:
            why = f": {record.error}" if record.error else ""
            raise JobHasNoResult(f"job '{job_id}' {record.state.value}{why}; it has no result")
        path = self.storage.result(job_id)
        if path is None:
            raise JobNotFound(f"the result of job '{job_id}' has expired")
        return path, record.result_name or f"stylized-{job_id}.mp4"

    def cancel(self, job_id: str, client: str = "") -> JobRecord:
        """Cancel a queued job (it never starts) or a running one (its worker stops, cleans up)."""
        self.status(job_id, client)  # another key's job: 404, and it is left alone
        with _queue_errors():
            applied, previous = self.store.cancel(job_id)
        if previous is None:
            raise JobNotFound(f"no job '{job_id}': the id is unknown or the job has expired")
        if not applied:
            raise JobAlreadyFinished(
                f"job '{job_id}' is already {previous.value}; "
                "only queued or running jobs can be cancelled"
            )
        if previous is JobState.QUEUED:
            self.storage.delete(job_id)  # the worker will skip it; nobody reads these files now
        # A running job's worker sees the cancel at its next frame and removes the files.
        return self.status(job_id, client)


def _where_the_classifier_is(record: JobRecord) -> str:
    """Where a teach job's result is: a message that names the classifier's URL."""
    name = record.classifier or "{name}"  # a job stored before names were recorded
    said = f"job '{record.job_id}' teaches the classifier '{name}': its result is no video"
    if record.state is JobState.SUCCEEDED:
        return f"{said}, it is GET /classifiers/{name} (use it with POST /classify?model={name})"
    if record.state in (JobState.FAILED, JobState.CANCELLED):
        return f"{said}, and as the job {record.state.value} there is no classifier either"
    return f"{said}; once the job has succeeded, it is GET /classifiers/{name}"
