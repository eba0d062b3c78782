"""Decoded PyAV frames as a player shows them: the display rotation a phone records, applied."""

from __future__ import annotations

import av
import numpy as np


def quarter_turns(frame: av.VideoFrame) -> int:
    """Counter-clockwise quarter turns that make a decoded frame upright (its display matrix)."""
    return round(frame.rotation / 90) % 4


def upright(frame: av.VideoFrame) -> np.ndarray:
    """The frame as RGB uint8 the way a player shows it: its display rotation applied."""
    array = frame.to_ndarray(format="rgb24")
    turns = quarter_turns(frame)
    return np.ascontiguousarray(np.rot90(array, turns)) if turns else array


def displayed_size(frame: av.VideoFrame) -> tuple[int, int]:
    """(width, height) of the frame as shown, after its display rotation."""
    if quarter_turns(frame) % 2:
        return frame.height, frame.width
    return frame.width, frame.height
