"""Style engines: a frames -> frames callable, and the named feed-forward styles.

Engines take and return lists of RGB uint8 frames of any size, so the video pipeline does not care
which one runs (the arbitrary-painting engine is in `service.inference.arbitrary`), nor on which
runtime (`service.inference.networks`).

    engine = FeedForwardStyle(Path("exported_models/styles/vangogh.onnx"), threads=2)
    stylised = engine(frames)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from service.inference.networks import StyleRuntime, open_network
from service.settings import MemoryArena

FramesFn = Callable[[list[np.ndarray]], list[np.ndarray]]


def to_uint8(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


class FeedForwardStyle:
    """A network trained for one style: NCHW RGB in 0..1 in and out, any size (padded).

    `concurrent` calls may run at once (frames painted side by side), each on `threads` threads.
    """

    def __init__(
        self,
        model: Path | bytes,
        threads: int,
        size_multiple: int = 4,
        input_name: str = "image",
        output_name: str = "stylized",
        arena: MemoryArena = "per_session",
        runtime: StyleRuntime = "onnxruntime",
        concurrent: int = 1,
    ) -> None:
        self.network = open_network(model, runtime, threads, concurrent, arena)
        self.size_multiple = size_multiple
        self.input_name, self.output_name = input_name, output_name

    def __call__(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        if not frames:
            return []
        height, width = frames[0].shape[:2]
        pad_h, pad_w = (-height) % self.size_multiple, (-width) % self.size_multiple
        batch = np.stack(frames).astype(np.float32) / 255.0  # (B, H, W, 3)
        if pad_h or pad_w:
            batch = np.pad(batch, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="reflect")
        x = np.ascontiguousarray(batch.transpose(0, 3, 1, 2))  # (B, 3, H, W)
        y = self.network.run({self.input_name: x}, self.output_name)
        return [to_uint8(out.transpose(1, 2, 0)[:height, :width]) for out in y]
