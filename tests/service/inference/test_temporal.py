"""Temporal smoothing on real clips: sudden changes reset it, normal motion does not."""

from __future__ import annotations

import numpy as np
import pytest

from service.inference.temporal import FlowSmoother, warp
from tests.utils.corpus import real_frames
from tests.utils.data import AUDIO_CLIP, CLIPS, PUNCH_CLIP

SIZE = (160, 120)


def _styled(frames: list[np.ndarray]) -> list[np.ndarray]:
    """A stand-in style that, like a real one, depends only on the frame: inverted colours."""
    return [255 - frame for frame in frames]


def _mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b).mean())


@pytest.mark.parametrize("clip", [AUDIO_CLIP, PUNCH_CLIP, CLIPS / "kinetics_demo.mp4"])
def test_normal_motion_never_resets(clip) -> None:
    frames = real_frames(clip, 40, SIZE)
    smoother = FlowSmoother()
    smoother(frames, _styled(frames))
    assert smoother.resets == 0


def test_a_white_flash_comes_out_as_a_flash() -> None:
    frames = real_frames(AUDIO_CLIP, 12, SIZE)
    frames[8] = np.full_like(frames[8], 255)
    styled = _styled(frames)
    outputs = FlowSmoother()(frames, styled)
    assert np.array_equal(outputs[8], styled[8])  # no trace of the frames before it
    assert np.array_equal(outputs[9], styled[9])  # nor of the flash after it


def test_the_first_frame_after_a_cut_is_as_fresh_as_a_frame_mid_shot() -> None:
    frames = real_frames(AUDIO_CLIP, 10, SIZE) + real_frames(PUNCH_CLIP, 10, SIZE)
    styled = _styled(frames)
    smoother = FlowSmoother()
    outputs = smoother(frames, styled)
    assert smoother.resets == 1
    mid_shot = _mad(outputs[5], styled[5])
    assert _mad(outputs[10], styled[10]) <= mid_shot


def test_a_fast_fade_to_white_drops_the_old_picture() -> None:
    frames = real_frames(AUDIO_CLIP, 12, SIZE)
    for i, weight in enumerate(np.linspace(0.25, 1.0, 4), start=8):
        frames[i] = (frames[i] * (1 - weight) + 255 * weight).astype(np.uint8)
    styled = _styled(frames)
    outputs = FlowSmoother()(frames, styled)
    assert np.array_equal(outputs[11], styled[11])  # all white: no old picture left


def test_measuring_the_flow_apart_from_blending_gives_the_same_video() -> None:
    frames = real_frames(PUNCH_CLIP, 16, SIZE)
    styled = _styled(frames)
    together = FlowSmoother()(frames, styled)
    apart = FlowSmoother()
    outputs = []
    for start in range(0, 16, 5):  # batches, as the job hands them over
        motions = apart.measure(frames[start : start + 5])
        outputs += apart.blend(motions, styled[start : start + 5])
    assert all(np.array_equal(a, b) for a, b in zip(together, outputs, strict=True))


@pytest.mark.parametrize("size", [(1280, 80), (512, 32), (32, 512)], ids=str)
def test_the_thinnest_frames_an_upload_may_have_are_smoothed(size: tuple[int, int]) -> None:
    """16:1 strips, the most the upload limits let through: the flow, measured at most 480 px
    long, would be 30 px short, where OpenCV's DIS reads out of bounds and kills the process."""
    frames = real_frames(PUNCH_CLIP, 6, size)
    smoother = FlowSmoother()
    motions = smoother.measure(frames)
    assert all(m.flow is not None and m.flow.shape == (size[1], size[0], 2) for m in motions[1:])
    outputs = smoother.blend(motions, _styled(frames))
    assert outputs[-1].shape == frames[-1].shape


def test_each_output_is_the_weighted_mean_of_the_warped_last_output_and_the_fresh_frame() -> None:
    frames = real_frames(PUNCH_CLIP, 6, SIZE)
    styled = _styled(frames)
    smoother = FlowSmoother()
    motions = smoother.measure(frames)
    outputs = smoother.blend(motions, styled)
    for t in range(1, 6):
        motion = motions[t]
        assert motion.flow is not None and motion.weight is not None
        weight = motion.weight.reshape(*motion.weight.shape[:2], 1)
        warped = warp(outputs[t - 1], motion.flow).astype(np.float32)
        expected = weight * warped + (1 - weight) * styled[t]
        assert np.abs(outputs[t] - expected).max() <= 1.0  # rounding
        assert 0 < float(motion.weight.max()) <= FlowSmoother().options.blend
