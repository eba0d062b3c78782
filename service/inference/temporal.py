"""Less flicker than frame-by-frame stylisation, without ghost trails; and how to measure it.

Each stylised frame is blended with the previous *output* warped onto it by optical flow
(OpenCV DIS) computed on the *source* frames. Pixels the flow cannot explain (occluded,
outside the frame, or whose source colour changed) keep the fresh per-frame stylisation, so fast
motion leaves no trails. When the previous frame no longer explains the current one as a whole
(a cut, a flash, a fade), the history is dropped and the frame is stylised afresh.

    smoother = FlowSmoother()
    outputs = smoother(source_batch, stylised_batch)  # stateful across consecutive batches
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class SmoothingOptions:
    blend: float = 0.7  # weight of the warped previous output where the flow is trusted
    colour_threshold: float = 18.0  # mean |source - warped previous source| above this: occluded
    flow_max_side: int = 480  # flow is computed at most at this size, then scaled up
    # A scene change drops the history: when more than this share of the pixels is not
    # explained by the warped previous source, or the brightness histograms of the two source
    # frames are further apart than `histogram_jump` (Bhattacharyya distance, 0..1). Normal
    # motion in the benchmark clips stays well below both (see tests/service/inference).
    reset_share: float = 0.5
    histogram_jump: float = 0.5


def _dis() -> cv2.DISOpticalFlow:
    return cv2.DISOpticalFlow.create(cv2.DISOPTICAL_FLOW_PRESET_FAST)


# OpenCV's DIS reads out of bounds (the process dies on SIGSEGV) on images with a side under
# this: a 1280x64 upload, its flow measured at 480x24, killed every worker that took the job.
DIS_MIN_SIDE = 32


def _flow_gray(frame_rgb: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    height, width = frame_rgb.shape[:2]
    # At most `max_side` on the long side, unless that leaves the short side under DIS's minimum.
    scale = max(min(1.0, max_side / max(height, width)), DIS_MIN_SIDE / min(height, width))
    gray = cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2GRAY)
    if scale != 1.0:
        # Linear, as the flow has always been measured: an INTER_AREA once written here sat in
        # the `dst` position and was never applied. Switching would move the tuned thresholds.
        size = (round(width * scale), round(height * scale))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_LINEAR)
    return gray, scale


def backward_flow(
    dis: cv2.DISOpticalFlow, current: np.ndarray, previous: np.ndarray, max_side: int
) -> np.ndarray:
    """Per pixel of `current`, its displacement to where it was in `previous`, at full size."""
    cur_gray, scale = _flow_gray(current, max_side)
    prev_gray, _ = _flow_gray(previous, max_side)
    # The stubs require `flow`; None (allocate a new one) is what OpenCV's docs and runtime accept.
    flow = dis.calc(cur_gray, prev_gray, None)  # type: ignore[call-overload]
    if scale != 1.0:
        height, width = current.shape[:2]
        flow = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR) / scale
    return flow


def histogram_distance(first_rgb: np.ndarray, second_rgb: np.ndarray) -> float:
    """Bhattacharyya distance (0 same, 1 disjoint) between the frames' brightness histograms."""
    hists: list[np.ndarray] = []
    for frame in (first_rgb, second_rgb):
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        hist = cv2.calcHist([gray], [0], None, [32], [0, 256])
        hists.append(hist / max(1.0, float(hist.sum())))
    return float(cv2.compareHist(hists[0], hists[1], cv2.HISTCMP_BHATTACHARYYA))


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """`image` sampled at pixel + flow (see `lands_inside` for where that is off the image)."""
    height, width = flow.shape[:2]
    where = _pixel_grid(height, width) + flow  # (H, W, 2): x, y to sample at
    # One (H, W, 2) map and no second one: what OpenCV accepts, not what its stubs declare.
    return cv2.remap(image, where, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)  # type: ignore[call-overload]


def lands_inside(flow: np.ndarray) -> np.ndarray:
    """The (H, W) mask of pixels whose pixel + flow lies inside the image."""
    height, width = flow.shape[:2]
    grid = _pixel_grid(height, width)
    map_x, map_y = grid[..., 0] + flow[..., 0], grid[..., 1] + flow[..., 1]
    return (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)


@functools.lru_cache(maxsize=8)
def _pixel_grid(height: int, width: int) -> np.ndarray:
    """(H, W, 2) float32 x, y of every pixel; built once per frame size (read-only)."""
    grid = np.stack(
        np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)),
        axis=-1,
    )
    grid.setflags(write=False)
    return grid


@dataclass
class Motion:
    """What the source frames say about one frame: where the previous output goes, and how much
    of it to keep. `weight` is None when the frame starts afresh (the first, or a scene change)."""

    flow: np.ndarray | None = None  # (H, W, 2) backward flow onto the previous frame
    weight: np.ndarray | None = None  # (H, W) float32 share of the warped previous output
    reset: bool = False  # a scene change (not merely the first frame)


class FlowSmoother:
    """Temporal blending along source-frame optical flow; keeps state between batches.

    Two halves, so the flow can be measured while the style network paints the same frames:
    `motions = smoother.measure(sources)` needs the source frames only, `smoother.blend(motions,
    stylised)` then mixes in the previous outputs. `smoother(sources, stylised)` does both.
    """

    def __init__(self, options: SmoothingOptions | None = None) -> None:
        self.options = options or SmoothingOptions()
        self.dis = _dis()
        self.previous_source: np.ndarray | None = None
        self.previous_output: np.ndarray | None = None
        self.resets = 0  # scene changes seen, for tests and benchmarks

    def __call__(self, sources: list[np.ndarray], stylised: list[np.ndarray]) -> list[np.ndarray]:
        return self.blend(self.measure(sources), stylised)

    def measure(self, sources: list[np.ndarray]) -> list[Motion]:
        """The motion of each source frame from the one before it (across batches)."""
        motions = []
        for source in sources:
            previous = self.previous_source
            if previous is None or previous.shape != source.shape:
                motions.append(Motion())
            else:
                motions.append(self._motion(source, previous))
            self.previous_source = source
        return motions

    def blend(self, motions: list[Motion], stylised: list[np.ndarray]) -> list[np.ndarray]:
        """Each stylised frame mixed with the previous output where its motion trusts it."""
        outputs = []
        for motion, styled in zip(motions, stylised, strict=True):
            output = styled
            previous = self.previous_output
            if motion.flow is not None and motion.weight is not None and previous is not None:
                warped_output = warp(previous, motion.flow)
                # weight * warped + (1 - weight) * styled in one pass: a fifth of numpy's time
                # through float temporaries, and within a level of its rounding.
                fresh = 1.0 - motion.weight
                output = cv2.blendLinear(warped_output, styled, motion.weight, fresh)
            self.resets += motion.reset
            self.previous_output = output
            outputs.append(output)
        return outputs

    def _motion(self, source: np.ndarray, previous_source: np.ndarray) -> Motion:
        options = self.options
        if histogram_distance(source, previous_source) > options.histogram_jump:
            return Motion(reset=True)
        flow = backward_flow(self.dis, source, previous_source, options.flow_max_side)
        difference = cv2.absdiff(source, warp(previous_source, flow))
        # Mean |difference| over the three channels below the threshold, as a sum of uint8s
        # (added channel by channel: ten times faster than numpy's sum over the last axis).
        colour_change = (
            difference[..., 0].astype(np.uint16) + difference[..., 1] + difference[..., 2]
        )
        trusted = lands_inside(flow) & (colour_change < 3 * options.colour_threshold)
        # Pixel by pixel, a flash or a cut leaves islands whose colour happens to match; when
        # most of the frame is unexplained, none of the old picture belongs in it.
        if 1.0 - trusted.mean() > options.reset_share:
            return Motion(reset=True)
        hard = options.blend * trusted.astype(np.float32)
        return Motion(flow=flow, weight=cv2.GaussianBlur(hard, (5, 5), 0))  # soft edges


def warping_error(
    sources: list[np.ndarray], outputs: list[np.ndarray], consistency_px: float = 1.0
) -> float:
    """Mean squared difference (on 0..1 values) between each output frame and the previous output
    warped onto it, over pixels where forward and backward source flow agree (not occluded).

    The flow and its occlusion mask come from the source frames only, as in Lai et al. (2018).
    """
    dis, errors = _dis(), []
    for t in range(1, len(sources)):
        back = backward_flow(dis, sources[t], sources[t - 1], 10_000)
        forward = backward_flow(dis, sources[t - 1], sources[t], 10_000)
        round_trip = np.linalg.norm(back + warp(forward, back), axis=2)
        valid = lands_inside(back) & (round_trip < consistency_px)
        warped = warp(outputs[t - 1], back)
        diff = (outputs[t].astype(np.float32) - warped.astype(np.float32)) / 255.0
        errors.append(float((diff**2).mean(axis=2)[valid].mean()) if valid.any() else 0.0)
    return float(np.mean(errors)) if errors else 0.0
