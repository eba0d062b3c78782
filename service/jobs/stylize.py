"""One stylize job from start to finish, as a plain function the Celery task calls.

Claims the job, builds the style engine, streams the video through style -> strength blend ->
flow smoothing -> H.264 (`paint_video`, the stages overlapped), and records progress; stops at
the next frame once the job is cancelled (or handed to another attempt after a redelivery),
leaving no partial file.

    outcome = run_stylize_job(request, attempt, context)   # JobState, or None when skipped
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np

from service.inference.strength import with_strength
from service.inference.styles import StyleEngines, UnknownStyle
from service.inference.stylize import FramesFn
from service.inference.temporal import FlowSmoother, Motion, SmoothingOptions
from service.jobs.state import JobState, JobStore
from service.jobs.storage import JobStorage
from service.video.decode import VideoDecodeError
from service.video.transcode import (
    StageTimes,
    TranscodeCancelled,
    TranscodeOptions,
    restyle_video,
)

# Errors that say the job's storage is full or cannot be written, rather than a bad video.
_STORAGE_ERRNOS = {
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EFBIG,
    errno.EROFS,
    errno.EACCES,
    errno.EPERM,
    errno.ENOTDIR,
}

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3

# OpenCV's threads in a worker process. A job's flow, blend, decoding and encoding each have a
# thread of their own beside the network, which already keeps the cores busy: OpenCV splitting
# that work further only adds switching (2 threads cost 3-4 % more of the job's CPU time and gave
# no shorter jobs; docs/benchmarks.md).
OPENCV_THREADS = 1


class StyleImageError(ValueError):
    """The painting given as the style cannot be read as an image."""


@dataclass(frozen=True)
class StylizeRequest:
    job_id: str
    video: Path
    style: str | None = None  # a named style, or
    style_image: Path | None = None  # a painting for the arbitrary-style networks
    strength: float = 1.0  # blend of style and original, applied before the smoothing


@dataclass
class JobContext:
    """What a worker process holds for every job: state, files, engines, options."""

    store: JobStore
    storage: JobStorage
    engines: StyleEngines
    transcode: TranscodeOptions
    smoothing: SmoothingOptions | None  # None: frame-by-frame
    frames_in_flight: int = 1  # frames painted at once, each on a thread of its own
    worker: str = ""
    on_progress: Callable[[int, int], None] = field(default=lambda done, total: None)
    # Frames stylised and seconds spent by a successful attempt (for the metrics).
    on_finished: Callable[[int, float], None] = field(default=lambda frames, seconds: None)


def read_painting(path: Path) -> np.ndarray:
    """A painting file as RGB uint8."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise StyleImageError("the style painting could not be read as an image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _engine(style: str | None, painting: Path | None, engines: StyleEngines) -> FramesFn:
    if painting is not None:
        return engines.painting(read_painting(painting))
    if style is None:
        raise UnknownStyle("the job names no style")
    return engines.named(style)


def _inputs(request: StylizeRequest) -> list[str]:
    """The job's input files by their names in its storage (the paths' last parts)."""
    names = [request.video.name]
    return names + ([request.style_image.name] if request.style_image is not None else [])


# A cancel is seen within this plus a frame's time (the API promises a stop within 2 s).
STOP_CHECK_S = 0.2


class _Attempt:
    """Progress, ETA and the stop check of one attempt at one job."""

    def __init__(self, request: StylizeRequest, attempt: str, context: JobContext) -> None:
        self.request, self.attempt, self.context = request, attempt, context
        self.started = time.monotonic()
        self.lost = False  # cancelled, or handed to another attempt
        self.frames_done = 0
        self.times = StageTimes()
        self._next_stop_check = 0.0

    def should_stop(self) -> bool:
        """Whether the job was cancelled or handed on; Redis is asked at most every
        STOP_CHECK_S (asked before every frame, it cost 1-2 % of a 320x240 job)."""
        now = time.monotonic()
        if not self.lost and now >= self._next_stop_check:
            self._next_stop_check = now + STOP_CHECK_S
            self.lost = not self.context.store.owned_by(self.request.job_id, self.attempt)
        return self.lost

    def report(self, done: int, total: int) -> None:
        self.frames_done = done
        elapsed = time.monotonic() - self.started
        eta = elapsed / done * (total - done) if done else None
        if not self.context.store.progress(self.request.job_id, self.attempt, done, total, eta):
            self.lost = True
        self.context.on_progress(done, total)


def paint_video(
    src: Path,
    dst: Path,
    engine: FramesFn,
    smoother: FlowSmoother | None,
    options: TranscodeOptions,
    on_progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    times: StageTimes | None = None,
    frames_in_flight: int = 1,
) -> int:
    """`src` painted by `engine`, smoothed along its motion, as H.264 at `dst`; the frame count.

    Decoding and encoding run on threads of their own (see `restyle_video`); the flow of each
    batch is measured on a third while the engine paints the same frames, and the batch is
    blended with the previous outputs on a fourth while the engine paints the next.
    `frames_in_flight` frames are painted at once, each on a thread of its own (the engine must
    allow concurrent calls, as onnxruntime sessions do). `times`, when given, gets the seconds
    each stage was busy.
    """
    times = times if times is not None else StageTimes()

    def paint_one(frame: np.ndarray) -> np.ndarray:
        # One frame per call, so a cancel is seen within a frame's time.
        if should_stop():
            raise TranscodeCancelled("the job was cancelled")
        return engine([frame])[0]

    def paint(frames: list[np.ndarray]) -> list[np.ndarray]:
        started = time.perf_counter()
        styled = list(painters.map(paint_one, frames))
        times.inference += time.perf_counter() - started
        return styled

    def measure(frames: list[np.ndarray]) -> list[Motion]:
        assert smoother is not None
        started = time.perf_counter()
        motions = smoother.measure(frames)
        times.flow += time.perf_counter() - started
        return motions

    def blend(motions: Future[list[Motion]], styled: list[np.ndarray]) -> list[np.ndarray]:
        assert smoother is not None
        ready = motions.result()
        started = time.perf_counter()
        outputs = smoother.blend(ready, styled)
        times.blend += time.perf_counter() - started
        return outputs

    # One thread each for flow and blend keeps every batch in order: the smoother's state
    # (previous source, previous output) moves on one batch at a time.
    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="flow") as flow,
        ThreadPoolExecutor(max_workers=frames_in_flight, thread_name_prefix="paint") as painters,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="blend") as blender,
    ):

        def transform(frames: list[np.ndarray]) -> list[np.ndarray] | Future[list[np.ndarray]]:
            if smoother is None:
                return paint(frames)
            motions = flow.submit(measure, frames)
            return blender.submit(blend, motions, paint(frames))

        return restyle_video(src, dst, transform, options, on_progress, should_stop, times)


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
    started = time.monotonic()
    logger.info("job %s started on %s", job_id, context.worker or "this process")
    try:
        # A remote backend downloads the inputs here; the shared folder hands out its paths.
        with storage.local_copies(job_id, _inputs(request)) as local:
            painting = local[request.style_image.name] if request.style_image else None
            engine = with_strength(
                _engine(request.style, painting, context.engines), request.strength
            )
            paint_video(
                local[request.video.name],
                scratch,
                engine,
                smoother,
                context.transcode,
                on_progress=run.report,
                should_stop=run.should_stop,
                times=run.times,
                frames_in_flight=context.frames_in_flight,
            )
        storage.commit_result(job_id, scratch)
    except TranscodeCancelled:
        return _stopped(request, context)
    except OSError as exc:  # FFmpeg's I/O errors included: it writes the result too
        if run.should_stop():  # another attempt owns the job now and tidied its folder
            return _stopped(request, context)
        if exc.errno in _STORAGE_ERRNOS:
            return _failed(request, attempt, context, _storage_message(exc))
        if isinstance(exc, av.error.FFmpegError):
            return _failed(request, attempt, context, _message(exc))
        raise
    except (VideoDecodeError, StyleImageError, UnknownStyle, av.error.FFmpegError) as exc:
        return _failed(request, attempt, context, _message(exc))
    finally:
        with suppress(NotADirectoryError):  # the storage is broken: nothing was written there
            scratch.unlink(missing_ok=True)
    if store.finish(job_id, attempt, JobState.SUCCEEDED):
        storage.discard(job_id, _inputs(request))  # the inputs are no longer needed
        context.on_finished(run.frames_done, time.monotonic() - started)
        logger.info("job %s succeeded: %d frames", job_id, run.frames_done)
        logger.info("job %s stages (busy seconds): %s", job_id, run.times.summary())
        return JobState.SUCCEEDED
    return _stopped(request, context)


def _storage_message(exc: OSError) -> str:
    return f"the result could not be written: {exc.strerror or exc}"


def _message(exc: Exception) -> str:
    if isinstance(exc, av.error.FFmpegError):
        return f"the video could not be decoded: {exc}"
    return str(exc)


def _failed(
    request: StylizeRequest, attempt: str, context: JobContext, message: str
) -> JobState | None:
    if not context.store.finish(request.job_id, attempt, JobState.FAILED, message):
        return _stopped(request, context)
    context.storage.discard(request.job_id, _inputs(request))
    logger.info("job %s failed: %s", request.job_id, message)
    return JobState.FAILED


def fail_stylize_job(
    request: StylizeRequest, attempt: str, context: JobContext, message: str
) -> None:
    """Fail the attempt's job for a reason found outside the pipeline (its time limit, a
    crash); its upload is dropped, as for every failed job."""
    _failed(request, attempt, context, message)


def _stopped(request: StylizeRequest, context: JobContext) -> JobState | None:
    """This attempt lost the job: clean up after a cancel, leave a newer attempt's files alone."""
    record = context.store.get(request.job_id)
    if record is not None and record.state is JobState.CANCELLED:
        context.storage.delete(request.job_id)
        return JobState.CANCELLED
    return None
