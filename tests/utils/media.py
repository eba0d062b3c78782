"""Builders of small media files for upload tests: images, audio, synthetic videos, bodies."""

from __future__ import annotations

import io
import tempfile
import wave
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np


def image_bytes(extension: str, width: int = 64, height: int = 48) -> bytes:
    """A small gradient image encoded as `extension` ('.jpg', '.png')."""
    gradient = np.linspace(0, 255, width, dtype=np.uint8)
    image = np.dstack([np.tile(gradient, (height, 1))] * 3)
    ok, encoded = cv2.imencode(extension, image)
    if not ok:
        raise RuntimeError(f"OpenCV cannot encode {extension}")
    return encoded.tobytes()


def wav_bytes(seconds: float = 1.0, rate: int = 8000) -> bytes:
    """A mono 16-bit WAV holding a 440 Hz tone: audio with no video stream."""
    t = np.arange(int(seconds * rate)) / rate
    samples = (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return buffer.getvalue()


def write_mjpg_avi(path: Path, width: int, height: int, frames: int, fps: float = 25.0) -> Path:
    """A real MJPEG AVI of moving grey bars, written by OpenCV."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot write MJPEG AVI files here")
    try:
        for i in range(frames):
            frame = np.full((height, width, 3), 40 + 30 * i % 200, np.uint8)
            frame[:, (i * 8) % width : (i * 8) % width + 8] = 255
            writer.write(frame)
    finally:
        writer.release()
    return path


def mjpg_avi_bytes(width: int, height: int, frames: int, fps: float = 25.0) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        return write_mjpg_avi(Path(folder) / "clip.avi", width, height, frames, fps).read_bytes()


def random_bytes(size: int, seed: int = 0) -> bytes:
    """Seeded noise; the seed is chosen so the first bytes match no container signature."""
    return np.random.default_rng(seed).bytes(size)


def multipart_chunks(
    field: str,
    filename: str,
    content: bytes,
    boundary: str = "actionstyle-test-boundary",
    chunk_size: int = 64 * 1024,
) -> tuple[str, Iterator[bytes]]:
    """(content type, body chunks) of a one-file multipart body, for uploads without a length."""
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    body = head + content + f"\r\n--{boundary}--\r\n".encode()
    chunks = (body[i : i + chunk_size] for i in range(0, len(body), chunk_size))
    return f"multipart/form-data; boundary={boundary}", chunks


def cut_clip(source: Path, target: Path, frames: int) -> Path:
    """The first `frames` frames of a real clip, as an MJPEG AVI at the source's size and rate."""
    capture = cv2.VideoCapture(str(source))
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    writer = None
    try:
        for _ in range(frames):
            ok, frame = capture.read()
            if not ok:
                break
            if writer is None:
                height, width = frame.shape[:2]
                fourcc = cv2.VideoWriter_fourcc(*"MJPG")
                writer = cv2.VideoWriter(str(target), fourcc, fps, (width, height))
            writer.write(frame)
    finally:
        capture.release()
        if writer is not None:
            writer.release()
    return target
