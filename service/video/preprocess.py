"""Frame sampling and normalisation: the contract between training and serving.

Training imports this module and the service uses it, so the tensor a model sees in production is
built by exactly the code that built it during evaluation. Pure numpy + OpenCV, nothing else.

    spec = ClipSpec.from_manifest(entry["input"])
    indices = sample_indices(total_frames, spec.frames)
    batch = frames_to_input([resize_short_side(f, spec.resize_short) for f in frames], spec)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ClipSpec:
    """How a clip becomes a model input; written into the manifest beside every model."""

    frames: int = 8
    resize_short: int = 128
    crop: int = 112
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    layout: str = "NCTHW"
    color: str = "RGB"
    sampling: str = "uniform: frame floor((i + 0.5) * n / T) for i in 0..T-1; centre crop"
    interpolation: str = "area"
    extras: dict[str, str] = field(default_factory=dict)

    def to_manifest(self) -> dict:
        data = asdict(self)
        data["mean"] = list(self.mean)
        data["std"] = list(self.std)
        return data

    @classmethod
    def from_manifest(cls, data: dict) -> ClipSpec:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["mean"] = tuple(known.get("mean", IMAGENET_MEAN))
        known["std"] = tuple(known.get("std", IMAGENET_STD))
        return cls(**known)


def sample_indices(total_frames: int, count: int) -> list[int]:
    """Indices of `count` frames spread evenly over a clip of `total_frames` frames.

    Each index is the middle of one of `count` equal segments, so short clips repeat frames rather
    than failing.
    """
    if total_frames < 1:
        raise ValueError("a clip needs at least one frame")
    return [min(total_frames - 1, int((i + 0.5) * total_frames / count)) for i in range(count)]


def short_side_size(width: int, height: int, size: int) -> tuple[int, int]:
    """(width, height) with the shorter side `size` pixels, keeping the aspect ratio."""
    scale = size / min(height, width)
    return max(size, round(width * scale)), max(size, round(height * scale))


def resize_short_side(frame_rgb: np.ndarray, size: int) -> np.ndarray:
    """Resize so the shorter side is `size` pixels, keeping the aspect ratio."""
    height, width = frame_rgb.shape[:2]
    scale = size / min(height, width)
    new_w, new_h = short_side_size(width, height, size)
    if (new_w, new_h) == (width, height):
        return np.ascontiguousarray(frame_rgb)
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(frame_rgb, (new_w, new_h), interpolation=interpolation)


def bgr_to_rgb(frame_bgr: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)


def centre_crop(frames: np.ndarray, size: int) -> np.ndarray:
    """Crop the centre `size` x `size` square of (T, H, W, 3) frames."""
    height, width = frames.shape[1:3]
    top, left = (height - size) // 2, (width - size) // 2
    return frames[:, top : top + size, left : left + size]


def normalise(frames: np.ndarray, spec: ClipSpec) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB -> (3, T, H, W) float32, scaled to [0, 1] then standardised."""
    mean, std = np.asarray(spec.mean, np.float32), np.asarray(spec.std, np.float32)
    x = (frames.astype(np.float32) / 255.0 - mean) / std
    return np.ascontiguousarray(x.transpose(3, 0, 1, 2))


def frames_to_input(resized_frames: Sequence[np.ndarray], spec: ClipSpec) -> np.ndarray:
    """T frames already passed through `resize_short_side` -> a (1, 3, T, crop, crop) batch."""
    if len(resized_frames) != spec.frames:
        raise ValueError(f"expected {spec.frames} frames, got {len(resized_frames)}")
    stacked = np.stack(resized_frames)  # (T, H, W, 3)
    return normalise(centre_crop(stacked, spec.crop), spec)[None]
