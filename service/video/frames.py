"""Decoded PyAV frames as a player shows them: the display matrix applied (a phone's rotation,
an editor's mirror), pixels made square, HDR tone-mapped to SDR."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from av.sidedata.sidedata import SideData, SideDataContainer

from service.video.hdr import frame_as_sdr, is_hdr


def open_video(path: Path) -> av.container.InputContainer:
    """An uploaded file opened for reading. Its titles and tags are read as UTF-8 with what is
    not UTF-8 replaced: old Windows tools wrote them in their code page, and PyAV refuses such a
    file by default (UnicodeDecodeError), though every frame in it plays."""
    return av.open(str(path), metadata_errors="replace")


def demuxed(
    container: av.container.InputContainer, *streams: av.stream.Stream
) -> Iterator[av.Packet]:
    """`container.demux(*streams)`, ended where PyAV fails on a stream that appears part-way.

    An MPEG-TS may carry a stream its tables did not announce (a bit error in a packet's PID is
    enough). PyAV's end-of-file flush then counts the streams FFmpeg knows by then but looks them
    up among those found at open: IndexError. The flush goes in stream order, so by then every
    stream found at open, the requested ones among them, has had its flush packet."""
    packets = container.demux(*streams)
    while True:
        try:
            packet = next(packets)
        except (StopIteration, IndexError):
            return
        yield packet


def decodable_frames(container: av.container.InputContainer) -> Iterator[av.VideoFrame]:
    """The first video stream's frames in order, a damaged packet skipped as players skip it."""
    for packet in demuxed(container, container.streams.video[0]):
        try:
            frames = packet.decode()
        except av.error.InvalidDataError:
            continue
        yield from frames


@dataclass(frozen=True)
class Orientation:
    """How a player turns and mirrors a frame's stored pixels to show them, as its display
    matrix says: phones record a quarter turn, editors and some cameras a mirror (`ffmpeg
    -display_hflip`), or both. Applied as: swap rows and columns, then reverse the columns,
    then reverse the rows."""

    transpose: bool = False
    reverse_columns: bool = False
    reverse_rows: bool = False

    def apply(self, array: np.ndarray) -> np.ndarray:
        if self == AS_STORED:
            return array
        if self.transpose:
            array = array.swapaxes(0, 1)
        if self.reverse_columns:
            array = array[:, ::-1]
        if self.reverse_rows:
            array = array[::-1]
        return np.ascontiguousarray(array)


AS_STORED = Orientation()


def orientation(frame: av.VideoFrame) -> Orientation:
    """The frame's display matrix as a player applies it, to the nearest quarter turn.

    The matrix maps a stored pixel (x, y) to its place on screen (a x + c y, b x + d y), y down;
    a mirror shows as a negative determinant. `frame.rotation` alone reads a mirror as a half
    turn, which would show the picture upside down.
    """
    # Not frame.side_data: that caches on the frame a container that refers back to it, and
    # the cycle leaves decoded frames to the garbage collector, which frees them at any moment
    # on any thread; results then came out different from run to run.
    matrix = SideDataContainer(frame).get("DISPLAYMATRIX")  # type: ignore[call-arg]  # stubs lack it
    if not isinstance(matrix, SideData):
        return AS_STORED
    a, b, _, c, d = np.frombuffer(bytes(matrix), dtype="<i4")[:5].astype(np.int64)
    if abs(a) + abs(d) >= abs(b) + abs(c):
        return Orientation(False, bool(a < 0), bool(d < 0))
    return Orientation(True, bool(c < 0), bool(b < 0))


# Below, `turn` is the video's orientation, read once from its first frame (the display matrix
# is the container's, the same on every frame); None reads it from `frame` itself.


def upright(frame: av.VideoFrame, turn: Orientation | None = None) -> np.ndarray:
    """The frame as RGB uint8 the way a player shows it: its display matrix applied."""
    return (orientation(frame) if turn is None else turn).apply(frame.to_ndarray(format="rgb24"))


def displayed_size(
    frame: av.VideoFrame, pixel_aspect: Fraction | None = None, turn: Orientation | None = None
) -> tuple[int, int]:
    """(width, height) of the frame as shown: its pixels made square (a DVD's or a DV camera's
    720x576 at 64:45 is 1024x576; the height is kept), then its display matrix applied."""
    width = frame.width
    if pixel_aspect and pixel_aspect > 0 and pixel_aspect != 1:
        width = max(1, round(frame.width * pixel_aspect))
    if (orientation(frame) if turn is None else turn).transpose:
        return frame.height, width
    return width, frame.height


def displayed(
    frame: av.VideoFrame, size: tuple[int, int], turn: Orientation | None = None
) -> np.ndarray:
    """The frame as RGB uint8 a player shows it, scaled to `size` (width, height as shown)."""
    turn = orientation(frame) if turn is None else turn
    if is_hdr(frame):
        stored_size = size[::-1] if turn.transpose else size
        return turn.apply(frame_as_sdr(frame, stored_size))  # mapped after scaling: fewer pixels
    array = upright(frame, turn)
    if (array.shape[1], array.shape[0]) == size:
        return array
    return cv2.resize(array, size, interpolation=cv2.INTER_AREA)


def fitted(
    frame: av.VideoFrame,
    size: tuple[int, int],
    pixel_aspect: Fraction | None,
    turn: Orientation | None = None,
) -> np.ndarray:
    """The frame as shown, fitted inside `size` (width, height) with black bars around it, as a
    player fits a picture whose shape changed mid-video (a browser's screen recording of a
    window resized while it records) rather than stretching it."""
    turn = orientation(frame) if turn is None else turn
    shown_width, shown_height = displayed_size(frame, pixel_aspect, turn)
    scale = min(size[0] / shown_width, size[1] / shown_height)
    inner = (
        min(size[0], max(2, round(shown_width * scale))),
        min(size[1], max(2, round(shown_height * scale))),
    )
    canvas = np.zeros((size[1], size[0], 3), np.uint8)
    top, left = (size[1] - inner[1]) // 2, (size[0] - inner[0]) // 2
    canvas[top : top + inner[1], left : left + inner[0]] = displayed(frame, inner, turn)
    return canvas
