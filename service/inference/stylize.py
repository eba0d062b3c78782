"""Style engines over onnxruntime: a frames -> frames callable, and the named feed-forward styles.

Engines take and return lists of RGB uint8 frames of any size, so the video pipeline does not care
which one runs (the arbitrary-painting engine is in `service.inference.arbitrary`).

    engine = FeedForwardStyle(Path("exported_models/styles/vangogh.onnx"), threads=2)
    stylised = engine(frames)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort

from service.inference.providers import execution_providers

FramesFn = Callable[[list[np.ndarray]], list[np.ndarray]]


def make_session(model: Path | bytes, threads: int, arena: bool = True) -> ort.InferenceSession:
    """A session from a file or from the bytes of one (already checked against the manifest).

    `arena=False` for a session that runs once: onnxruntime's arena keeps what one 320x240 pass
    needed (about 45 MB for a student) for the life of the session.
    """
    options = ort.SessionOptions()
    options.enable_cpu_mem_arena = arena
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # A style network runs beside the job's decode, flow and encode threads: threads that spin
    # between calls take cores those stages need (5-12 % slower jobs on 2 cores, and 2x slower
    # inference when the machine is busy; benchmarks/stylize_speed.py).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, options, providers=execution_providers())


def to_uint8(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


class FeedForwardStyle:
    """A network trained for one style: NCHW RGB in 0..1 in and out, any size (padded)."""

    def __init__(
        self,
        model: Path | bytes,
        threads: int,
        size_multiple: int = 4,
        input_name: str = "image",
        output_name: str = "stylized",
        arena: bool = True,
    ) -> None:
        self.session = make_session(model, threads, arena)
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
        y = self.session.run([self.output_name], {self.input_name: x})[0]
        return [to_uint8(out.transpose(1, 2, 0)[:height, :width]) for out in y]
