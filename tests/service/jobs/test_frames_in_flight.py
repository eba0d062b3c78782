"""paint_video with several frames at once: side by side, in order, the same video, cancellable."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from service.inference.stylize import FeedForwardStyle, FramesFn
from service.inference.temporal import FlowSmoother, SmoothingOptions
from service.jobs.stylize import paint_video
from service.video.transcode import TranscodeCancelled, TranscodeOptions, restyle_video
from tests.utils.corpus import decoded_frames, marked_frames, write_video
from tests.utils.data import AUDIO_CLIP, REPO_ROOT

VANGOGH = REPO_ROOT / "exported_models" / "styles" / "vangogh.onnx"
OPTIONS = TranscodeOptions(batch_size=6)


@pytest.fixture(scope="module")
def vangogh() -> FeedForwardStyle:
    return FeedForwardStyle(VANGOGH, threads=1)


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return write_video(tmp_path / "clip.mp4", marked_frames(AUDIO_CLIP, 18, (96, 160)))


def meeting_in_pairs(engine: FramesFn, timeout_s: float = 10.0) -> FramesFn:
    """`engine`, but each call waits until a second call has started beside it: calls made one
    after another break the barrier (BrokenBarrierError) instead of passing."""
    barrier = threading.Barrier(2, timeout=timeout_s)

    def paint(frames: list[np.ndarray]) -> list[np.ndarray]:
        barrier.wait()
        return engine(frames)

    return paint


class _Recording(FlowSmoother):
    """A FlowSmoother that keeps the frames it hands on to the encoder."""

    def __init__(self) -> None:
        super().__init__(SmoothingOptions())
        self.outputs: list[np.ndarray] = []

    def blend(self, motions, stylised):
        outputs = super().blend(motions, stylised)
        self.outputs.extend(outputs)
        return outputs


def assert_same_frames(first: list[np.ndarray], second: list[np.ndarray]) -> None:
    """The same pictures, compared before H.264 (whose choices for a macroblock can turn a
    one-level difference into a visible one). A level of rounding is allowed: in one CI run of
    a full suite the network's output moved by a level here and there between two calls on the
    same input, which no rerun reproduced; a wrong order or a stale previous frame moves tens."""
    assert len(first) == len(second) == 18
    for a, b in zip(first, second, strict=True):
        difference = np.abs(a.astype(np.int16) - b.astype(np.int16))
        assert difference.max() <= 1 and (difference == 0).mean() > 0.999


def test_two_frames_in_flight_paint_side_by_side_and_give_the_same_video(
    tmp_path: Path, clip: Path, vangogh: FeedForwardStyle
) -> None:
    painted = {}
    for in_flight, engine in ((1, vangogh), (2, meeting_in_pairs(vangogh))):
        result = tmp_path / f"in_flight_{in_flight}.mp4"
        smoother = _Recording()
        frames = paint_video(clip, result, engine, smoother, OPTIONS, frames_in_flight=in_flight)
        assert frames == 18 and len(decoded_frames(result)) == 18
        painted[in_flight] = smoother.outputs
    assert_same_frames(painted[1], painted[2])


def test_one_frame_at_a_time_never_overlaps(tmp_path: Path, clip: Path) -> None:
    # The barrier test's premise: without frames in flight the pairs never meet.
    engine = meeting_in_pairs(lambda frames: frames, timeout_s=0.5)
    with pytest.raises(threading.BrokenBarrierError):
        paint_video(clip, tmp_path / "out.mp4", engine, None, OPTIONS, frames_in_flight=1)


def test_a_cancel_stops_every_frame_in_flight(
    tmp_path: Path, clip: Path, vangogh: FeedForwardStyle
) -> None:
    painted = []

    def counting(frames: list[np.ndarray]) -> list[np.ndarray]:
        painted.append(len(frames))
        return vangogh(frames)

    with pytest.raises(TranscodeCancelled):
        paint_video(
            clip,
            tmp_path / "never.mp4",
            counting,
            None,
            OPTIONS,
            should_stop=lambda: len(painted) >= 4,
            frames_in_flight=2,
        )
    assert 4 <= len(painted) <= 6  # those already in flight finish; no batch after the cancel
    assert not (tmp_path / "never.mp4").exists()
    assert not [t for t in threading.enumerate() if t.name.startswith(("paint", "transcode-"))]


class _BlendWaitsForNextBatch(_Recording):
    """Blends only once a frame of a later batch is being painted (or fails after a timeout)."""

    def __init__(self, painting_later_batch: threading.Event) -> None:
        super().__init__()
        self.painting_later_batch = painting_later_batch
        self.blended_batches = 0

    def blend(self, motions, stylised):
        if self.blended_batches == 0 and not self.painting_later_batch.wait(timeout=10.0):
            raise AssertionError("the first batch's blend held up the painting of the next")
        self.blended_batches += 1
        return super().blend(motions, stylised)


def test_the_blend_overlaps_the_next_batch_and_gives_the_same_video(
    tmp_path: Path, clip: Path, vangogh: FeedForwardStyle
) -> None:
    painting_later_batch = threading.Event()
    painted = []

    def engine(frames: list[np.ndarray]) -> list[np.ndarray]:
        painted.append(len(frames))
        if len(painted) > OPTIONS.batch_size:
            painting_later_batch.set()
        return vangogh(frames)

    overlapped = tmp_path / "overlapped.mp4"
    smoother = _BlendWaitsForNextBatch(painting_later_batch)
    assert paint_video(clip, overlapped, engine, smoother, OPTIONS) == 18
    assert smoother.blended_batches == 3

    # The same frames painted and blended one batch after another, with nothing overlapped.
    reference_smoother = _Recording()
    in_order = tmp_path / "in_order.mp4"
    restyle_video(
        clip, in_order, lambda frames: reference_smoother(frames, vangogh(frames)), OPTIONS
    )
    assert_same_frames(smoother.outputs, reference_smoother.outputs)
