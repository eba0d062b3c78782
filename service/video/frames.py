"""Decoded PyAV frames as a player shows them: the display rotation a phone records applied,
pixels made square, HDR tone-mapped to SDR."""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction

import av
import cv2
import numpy as np

from service.video.hdr import frame_as_sdr, is_hdr


def decodable_frames(container: av.container.InputContainer) -> Iterator[av.VideoFrame]:
    """The first video stream's frames in order, a damaged packet skipped as players skip it."""
    for packet in container.demux(container.streams.video[0]):
        try:
            frames = packet.decode()
        except av.error.InvalidDataError:
            continue
        yield from frames


def quarter_turns(frame: av.VideoFrame) -> int:
    """Counter-clockwise quarter turns that make a decoded frame upright (its display matrix)."""
    return round(frame.rotation / 90) % 4


def upright(frame: av.VideoFrame) -> np.ndarray:
    """The frame as RGB uint8 the way a player shows it: its display rotation applied."""
    array = frame.to_ndarray(format="rgb24")
    turns = quarter_turns(frame)
    return np.ascontiguousarray(np.rot90(array, turns)) if turns else array


def displayed_size(frame: av.VideoFrame, pixel_aspect: Fraction | None = None) -> tuple[int, int]:
    """(width, height) of the frame as shown: its pixels made square (a DVD's or a DV camera's
    720x576 at 64:45 is 1024x576; the height is kept), then its display rotation applied."""
    width = frame.width
    if pixel_aspect and pixel_aspect > 0 and pixel_aspect != 1:
        width = max(1, round(frame.width * pixel_aspect))
    if quarter_turns(frame) % 2:
        return frame.height, width
    return width, frame.height


def displayed(frame: av.VideoFrame, size: tuple[int, int]) -> np.ndarray:
    """The frame as RGB uint8 a player shows it, scaled to `size` (width, height as shown)."""
    turns = quarter_turns(frame)
    if is_hdr(frame):
        stored_size = size[::-1] if turns % 2 else size
        array = frame_as_sdr(frame, stored_size)  # tone-mapped after scaling: fewer pixels
        return np.ascontiguousarray(np.rot90(array, turns)) if turns else array
    array = upright(frame)
    if (array.shape[1], array.shape[0]) == size:
        return array
    return cv2.resize(array, size, interpolation=cv2.INTER_AREA)
