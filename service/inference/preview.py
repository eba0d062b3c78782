"""One picture restyled at once, small and quick: the page's live preview of a style's strength.

The picture's size is read from its header before anything is decoded, so a small file that
would decode to a huge image is refused without costing memory; it is scaled down to at most
`PREVIEW_MAX_SIDE` pixels on its long side, and the style network runs only while it holds one
of the process's inference slots (shared with /classify), waiting for one at most a few seconds.

    frame = read_picture(data)                      # RGB uint8, or InvalidPreviewImage
    jpeg = render_preview(frame, lambda: engines.named("vangogh"), 0.5, slots)
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable

import cv2
import numpy as np

from service.inference.strength import with_strength
from service.inference.stylize import FramesFn
from service.video.decode import DecodeLimits, too_thin

PREVIEW_MAX_SIDE = 480
MAX_PREVIEW_BYTES = 8 * 2**20
# A DCI 4K frame (4096x2160) is the largest accepted: the page sends a 480 px one anyway.
MAX_PREVIEW_PIXELS = 4096 * 2160
# A preview is a frame of the video it previews: the same shape limits as the video's frames.
_FRAME_SHAPE = DecodeLimits()
SLOT_WAIT_S = 5.0
JPEG_QUALITY = 85
_ACCEPTED = "send a JPEG, PNG or WebP picture"


class InvalidPreviewImage(ValueError):
    """The picture to preview is not a JPEG, PNG or WebP we can read, or has too many pixels."""


class PreviewBusy(RuntimeError):
    """Every inference slot stayed busy while the preview waited for one."""

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after_s)}


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
        elif marker in (0x01, *range(0xD0, 0xD9)):  # markers without a length
            i += 2
        elif 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a frame header
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        else:
            i += 2 + struct.unpack(">H", data[i + 2 : i + 4])[0]
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30:
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return None


def picture_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG, PNG or WebP header, without decoding; None for others."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if data.startswith(b"\xff\xd8"):
        return _jpeg_size(data)
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return _webp_size(data)
    return None


def read_picture(data: bytes) -> np.ndarray:
    """The picture as RGB uint8, refused before decoding when it has too many pixels."""
    size = picture_size(data)
    if size is None:
        raise InvalidPreviewImage(f"the picture is not an image we can read; {_ACCEPTED}")
    width, height = size
    if width * height > MAX_PREVIEW_PIXELS:
        raise InvalidPreviewImage(
            f"the picture is {width}x{height}; send one of at most {MAX_PREVIEW_PIXELS:,} "
            f"pixels (a {PREVIEW_MAX_SIDE} px frame is plenty for a preview)"
        )
    if min(width, height) < _FRAME_SHAPE.min_side:
        raise InvalidPreviewImage(
            f"the picture is {width}x{height}, smaller than the minimum of "
            f"{_FRAME_SHAPE.min_side} pixels a side; send a frame of your video"
        )
    if thin := too_thin(width, height, _FRAME_SHAPE):
        raise InvalidPreviewImage(
            f"the picture is {width}x{height}, {thin}; send a frame of your video"
        )
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.shape[0] * image.shape[1] > MAX_PREVIEW_PIXELS:
        raise InvalidPreviewImage(f"the picture could not be decoded; {_ACCEPTED}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def scale_down(frame: np.ndarray, max_side: int = PREVIEW_MAX_SIDE) -> np.ndarray:
    """The frame with its long side at most `max_side` (never enlarged)."""
    height, width = frame.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1.0:
        return frame
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def render_preview(
    frame: np.ndarray,
    engine: Callable[[], FramesFn],
    strength: float,
    slots: threading.Semaphore,
    wait_s: float = SLOT_WAIT_S,
) -> bytes:
    """`frame` scaled down, stylised by `engine()` at `strength`, as JPEG bytes."""
    small = scale_down(frame)
    if not slots.acquire(timeout=wait_s):
        raise PreviewBusy(f"the server is busy: no inference slot came free in {wait_s:g} s")
    try:  # building the engine (its first session, a painting's style) is inference too
        styled = with_strength(engine(), strength)([small])[0]
    finally:
        slots.release()
    ok, jpeg = cv2.imencode(
        ".jpg", cv2.cvtColor(styled, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    )
    if not ok:
        raise RuntimeError("OpenCV could not encode the preview as JPEG")
    return jpeg.tobytes()
