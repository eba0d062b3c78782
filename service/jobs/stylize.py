"""One stylize job from start to finish, as a plain function the Celery task calls.

Claims the job, builds the style engine, streams the video through style -> flow smoothing ->
H.264, and records progress; stops at the next frame once the job is cancelled (or handed to
another attempt after a redelivery), leaving no partial file.

    outcome = run_stylize_job(request, attempt, context)   # JobState, or None when skipped
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np

from service.inference.styles import StyleEngines, UnknownStyle
from service.inference.stylize import FramesFn
from service.inference.temporal import FlowSmoother, SmoothingOptions
from service.jobs.state import JobState, JobStore
from service.jobs.storage import JobStorage
from service.video.decode import VideoDecodeError
from service.video.transcode import TranscodeCancelled, TranscodeOptions, restyle_video

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3


class StyleImageError(ValueError):
    """The painting given as the style cannot be read as an image."""


@dataclass(frozen=True)
class StylizeRequest:
    job_id: str
    video: Path
    style: str | None = None  # a named style, or
    style_image: Path | None = None  # a painting for the arbitrary-style networks


@dataclass
class JobContext:
    """What a worker process holds for every job: state, files, engines, options."""

    store: JobStore
    storage: JobStorage
    engines: StyleEngines
    transcode: TranscodeOptions
    smoothing: SmoothingOptions | None  # None: frame-by-frame
    worker: str = ""
    on_progress: Callable[[int, int], None] = field(default=lambda done, total: None)


def read_painting(path: Path) -> np.ndarray:
    """A painting file as RGB uint8."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise StyleImageError("the style painting could not be read as an image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _engine(request: StylizeRequest, engines: StyleEngines) -> FramesFn:
    if request.style_image is not None:
        return engines.painting(read_painting(request.style_image))
    if request.style is None:
        raise UnknownStyle("the job names no style")
    return engines.named(request.style)


class _Attempt:
    """Progress, ETA and the stop check of one attempt at one job."""

    def __init__(self, request: StylizeRequest, attempt: str, context: JobContext) -> None:
        self.request, self.attempt, self.context = request, attempt, context
        self.started = time.monotonic()
        self.lost = False  # cancelled, or handed to another attempt

    def should_stop(self) -> bool:
        if not self.lost:
            self.lost = not self.context.store.owned_by(self.request.job_id, self.attempt)
        return self.lost

    def report(self, done: int, total: int) -> None:
        elapsed = time.monotonic() - self.started
        eta = elapsed / done * (total - done) if done else None
        if not self.context.store.progress(self.request.job_id, self.attempt, done, total, eta):
            self.lost = True
        self.context.on_progress(done, total)

    def transform(self, engine: FramesFn, smoother: FlowSmoother | None) -> FramesFn:
        def apply(frames: list[np.ndarray]) -> list[np.ndarray]:
            styled = []
            for frame in frames:  # one at a time, so a cancel is seen within a frame's time
                if self.should_stop():
                    raise TranscodeCancelled("the job was cancelled")
                styled.extend(engine([frame]))
            return smoother(frames, styled) if smoother else styled

        return apply


def run_stylize_job(request: StylizeRequest, attempt: str, context: JobContext) -> JobState | None:
    """Run the job; returns its final state, or None when this attempt does not (or no longer)
    own it: cancelled before it started, already finished, expired, or redelivered elsewhere."""
    store, storage, job_id = context.store, context.storage, request.job_id
    if not store.start(job_id, attempt, context.worker):
        record = store.get(job_id)
        if record is not None and record.state is JobState.CANCELLED:
            storage.delete(job_id)
        logger.info("job %s not started: %s", job_id, record.state if record else "expired")
        return None
    if store.count_attempt(job_id) > MAX_ATTEMPTS:
        # Each earlier attempt's worker died mid-job (killed, out of memory): stop retrying.
        message = (
            f"the job was started {MAX_ATTEMPTS} times and its worker stopped each time "
            "(out of memory?); try a shorter or smaller video"
        )
        return _failed(request, attempt, context, message)
    run = _Attempt(request, attempt, context)
    smoother = FlowSmoother(context.smoothing) if context.smoothing else None
    scratch = storage.scratch(job_id, attempt)
    try:
        engine = _engine(request, context.engines)
        restyle_video(
            request.video,
            scratch,
            run.transform(engine, smoother),
            context.transcode,
            on_progress=run.report,
            should_stop=run.should_stop,
        )
        storage.commit_result(job_id, scratch)
    except TranscodeCancelled:
        return _stopped(request, context)
    except (VideoDecodeError, StyleImageError, UnknownStyle, av.error.FFmpegError) as exc:
        return _failed(request, attempt, context, _message(exc))
    except OSError:
        if run.should_stop():  # another attempt owns the job now and tidied its folder
            return _stopped(request, context)
        raise
    finally:
        scratch.unlink(missing_ok=True)
    if store.finish(job_id, attempt, JobState.SUCCEEDED):
        for name in (request.video, request.style_image):
            if name is not None:
                name.unlink(missing_ok=True)  # the inputs are no longer needed
        return JobState.SUCCEEDED
    return _stopped(request, context)


def _message(exc: Exception) -> str:
    if isinstance(exc, av.error.FFmpegError):
        return f"the video could not be decoded: {exc}"
    return str(exc)


def _failed(
    request: StylizeRequest, attempt: str, context: JobContext, message: str
) -> JobState | None:
    if not context.store.finish(request.job_id, attempt, JobState.FAILED, message):
        return _stopped(request, context)
    for name in (request.video, request.style_image):
        if name is not None:
            name.unlink(missing_ok=True)
    return JobState.FAILED


def fail_job(store: JobStore, job_id: str, attempt: str, message: str) -> bool:
    """Mark the attempt's job failed for a reason found outside the pipeline (a time limit)."""
    return store.finish(job_id, attempt, JobState.FAILED, message)


def _stopped(request: StylizeRequest, context: JobContext) -> JobState | None:
    """This attempt lost the job: clean up after a cancel, leave a newer attempt's files alone."""
    record = context.store.get(request.job_id)
    if record is not None and record.state is JobState.CANCELLED:
        context.storage.delete(request.job_id)
        return JobState.CANCELLED
    return None
