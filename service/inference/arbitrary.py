"""Magenta's arbitrary image stylisation over onnxruntime: any painting as the style.

The one wrapper of these networks: the service runs it for `style=custom`, and training uses it
as the teacher that the named styles' students are distilled from. It stays on onnxruntime:
the transformer is an int8 (QDQ) model, and OpenVINO's int8 arithmetic paints it differently
(SSIM 0.91-0.94 on UCF101 frames against its quantisation simulated op by op in onnxruntime,
which onnxruntime's own kernels match), and the predictor does not compile there.

    arbitrary = ArbitraryStyle(predict_path, transform_path, threads=2)
    vector = arbitrary.style_vector(painting_rgb)        # (H, W, 3) uint8 -> (1, 1, 1, 100)
    stylised = arbitrary.stylise(frame_rgb, vector)      # (H, W, 3) uint8 -> same shape
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from service.inference.networks import make_session
from service.inference.stylize import FramesFn, to_uint8
from service.settings import MemoryArena

STYLE_SIZE = 256  # the predictor's input: a painting's centre square
CONTENT_SIZE = 384  # the transformer's fixed input: a frame's longer side, padded to a square


class ArbitraryStyle:
    """A style predictor (256 px) and a transformer (384 px).

    The transformer's input is fixed at 384x384: each frame is scaled so its longer side is 384,
    reflect-padded to the square, stylised, cropped and scaled back to the frame's size.
    """

    def __init__(
        self,
        predict: Path | bytes,
        transform: Path | bytes,
        threads: int,
        style_size: int = STYLE_SIZE,
        content_size: int = CONTENT_SIZE,
        arena: MemoryArena = "per_session",
    ) -> None:
        self.predictor = make_session(predict, threads, arena)
        self.transformer = make_session(transform, threads, arena)
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

    def mean_style_vector(self, paintings_rgb: list[np.ndarray] | np.ndarray) -> np.ndarray:
        """The mean vector over a set of paintings: a painter's style rather than one canvas."""
        vectors = [self.style_vector(painting) for painting in paintings_rgb]
        return np.mean(vectors, axis=0).astype(np.float32)

    def stylise(self, frame: np.ndarray, vector: np.ndarray) -> np.ndarray:
        """One RGB uint8 frame in the style `vector`, at the frame's size."""
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
        return cv2.resize(to_uint8(out), (width, height), interpolation=cv2.INTER_CUBIC)

    def with_style(self, vector: np.ndarray) -> FramesFn:
        """A frames -> frames engine in the style `vector`, as the video pipeline takes."""
        return lambda frames: [self.stylise(frame, vector) for frame in frames]
