"""Style engines over onnxruntime: named feed-forward styles, and any painting as the style.

Both take and return lists of RGB uint8 frames of any size, so the video pipeline does not care
which engine runs.

    engine = FeedForwardStyle(Path("exported_models/styles/vangogh.onnx"), threads=2)
    stylised = engine(frames)
    arbitrary = ArbitraryStyle(predict_path, transform_path, threads=2)
    stylised = arbitrary.with_style(arbitrary.style_vector(painting_rgb))(frames)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

FramesFn = Callable[[list[np.ndarray]], list[np.ndarray]]


def make_session(model: Path | bytes, threads: int) -> ort.InferenceSession:
    """A CPU session from a file or from the bytes of one (already checked against the manifest)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def _to_uint8(image: np.ndarray) -> np.ndarray:
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
    ) -> None:
        self.session = make_session(model, threads)
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
        return [_to_uint8(out.transpose(1, 2, 0)[:height, :width]) for out in y]


class ArbitraryStyle:
    """Magenta's arbitrary image stylisation: a style predictor (256 px) and a transformer (384 px).

    The transformer's input is fixed at 384x384: each frame is scaled so its longer side is 384,
    reflect-padded to the square, stylised, cropped and scaled back to the frame's size.
    """

    def __init__(
        self,
        predict: Path | bytes,
        transform: Path | bytes,
        threads: int,
        style_size: int = 256,
        content_size: int = 384,
    ) -> None:
        self.predictor = make_session(predict, threads)
        self.transformer = make_session(transform, threads)
        self.style_size, self.content_size = style_size, content_size
        self._content_input, self._vector_input = (i.name for i in self.transformer.get_inputs())

    def style_vector(self, painting_rgb: np.ndarray) -> np.ndarray:
        """The 100-d style of a painting (its centre square at 256x256)."""
        height, width = painting_rgb.shape[:2]
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        square = painting_rgb[top : top + side, left : left + side]
        square = cv2.resize(
            square, (self.style_size, self.style_size), interpolation=cv2.INTER_AREA
        )
        x = (square.astype(np.float32) / 255.0)[None]
        return self.predictor.run(None, {self.predictor.get_inputs()[0].name: x})[0]

    def _stylise_one(self, frame: np.ndarray, vector: np.ndarray) -> np.ndarray:
        height, width = frame.shape[:2]
        scale = self.content_size / max(height, width)
        small_w, small_h = max(1, round(width * scale)), max(1, round(height * scale))
        small = cv2.resize(frame, (small_w, small_h), interpolation=cv2.INTER_AREA)
        pad = ((0, self.content_size - small_h), (0, self.content_size - small_w), (0, 0))
        fits = pad[0][1] < small_h and pad[1][1] < small_w  # reflection needs room to mirror
        square = np.pad(small.astype(np.float32) / 255.0, pad, mode="reflect" if fits else "edge")
        out = self.transformer.run(
            None, {self._content_input: square[None], self._vector_input: vector}
        )[0][0][:small_h, :small_w]
        return cv2.resize(_to_uint8(out), (width, height), interpolation=cv2.INTER_CUBIC)

    def with_style(self, vector: np.ndarray) -> FramesFn:
        return lambda frames: [self._stylise_one(frame, vector) for frame in frames]
