"""The preview's picture handling: size from the header before decoding, scaled down, bounded."""

from __future__ import annotations

import struct
import threading
import zlib

import cv2
import numpy as np
import pytest

from service.inference.preview import (
    InvalidPreviewImage,
    PreviewBusy,
    picture_size,
    read_picture,
    render_preview,
    scale_down,
)


def encoded(extension: str, width: int, height: int) -> bytes:
    image = np.random.default_rng(0).integers(0, 255, (height, width, 3), np.uint8)
    ok, data = cv2.imencode(extension, image, [cv2.IMWRITE_WEBP_QUALITY, 101])
    assert ok
    return data.tobytes()


def png_header(width: int, height: int) -> bytes:
    """The start of a PNG claiming `width` x `height`: what a decompression bomb looks like."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    crc = struct.pack(">I", zlib.crc32(chunk))
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + crc


@pytest.mark.parametrize("extension", [".jpg", ".png", ".webp"])
def test_the_size_comes_from_the_header(extension: str) -> None:
    data = encoded(extension, 123, 45)
    assert picture_size(data) == (123, 45)
    assert read_picture(data).shape == (45, 123, 3)


def test_lossy_webp_size_too() -> None:
    black = np.zeros((30, 70, 3), np.uint8)
    ok, data = cv2.imencode(".webp", black, [cv2.IMWRITE_WEBP_QUALITY, 80])
    assert ok and picture_size(data.tobytes()) == (70, 30)


def test_too_many_pixels_is_refused_before_decoding() -> None:
    with pytest.raises(InvalidPreviewImage) as refused:
        read_picture(png_header(20_000, 20_000))
    assert str(refused.value) == (
        "the picture is 20000x20000; send one of at most 8,847,360 pixels "
        "(a 480 px frame is plenty for a preview)"
    )


@pytest.mark.parametrize("data", [b"", b"GIF89a" + bytes(40), b"\xff\xd8\xff" + bytes(20)])
def test_what_is_not_a_picture_is_refused(data: bytes) -> None:
    with pytest.raises(InvalidPreviewImage, match="send a JPEG, PNG or WebP picture"):
        read_picture(data)


def test_scaled_to_480_on_the_long_side_never_enlarged() -> None:
    assert scale_down(np.zeros((1080, 1920, 3), np.uint8)).shape == (270, 480, 3)
    assert scale_down(np.zeros((1920, 1080, 3), np.uint8)).shape == (480, 270, 3)
    small = np.zeros((100, 50, 3), np.uint8)
    assert scale_down(small) is small


def test_busy_slots_answer_busy_within_the_wait() -> None:
    slots = threading.BoundedSemaphore(1)
    slots.acquire()
    with pytest.raises(PreviewBusy) as busy:
        render_preview(np.zeros((8, 8, 3), np.uint8), lambda: lambda f: f, 1.0, slots, 0.05)
    assert busy.value.headers == {"Retry-After": "1"}
    slots.release()
    jpeg = render_preview(np.zeros((8, 8, 3), np.uint8), lambda: lambda f: f, 1.0, slots)
    assert jpeg.startswith(b"\xff\xd8")


@pytest.mark.parametrize(
    ("width", "height", "detail"),
    [
        (4, 4, "the picture is 4x4, smaller than the minimum of 32 pixels a side"),
        (31, 200, "the picture is 31x200, smaller than the minimum of 32 pixels a side"),
        (2000, 100, "the picture is 2000x100, 20 times wider than tall, beyond the limit of 16"),
        (50, 1000, "the picture is 50x1000, 20 times taller than wide, beyond the limit of 16"),
    ],
)
def test_frames_too_small_or_too_thin_to_paint_are_refused(
    width: int, height: int, detail: str
) -> None:
    """The style networks' padding fails on a few pixels: refused, as a video of them is."""
    with pytest.raises(InvalidPreviewImage, match=detail):
        read_picture(encoded(".png", width, height))
    assert read_picture(encoded(".png", 512, 32)).shape == (32, 512, 3)  # 16:1 is accepted
