"""Builders of hostile uploads: damaged, disguised, extreme or oversized videos, as bytes.

Each builder returns the bytes of one kind of bad file, built from real clips or written with
PyAV / OpenCV in a temporary folder (there is no ffmpeg binary).

    body = mp4_cut_before_index(YOYO_CLIP)
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from tests.utils.media import mjpg_avi_bytes

_BOUNDARY = "actionstyle-hostile-boundary"


def _frames(source: Path, count: int) -> Iterator[np.ndarray]:
    with av.open(str(source)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i >= count:
                return
            yield frame.to_ndarray(format="rgb24")


def mp4_bytes(source: Path, frames: int = 50, codec: str = "mpeg4") -> bytes:
    """The first `frames` of a real clip re-encoded as MP4 (PyAV writes the moov index last)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "clip.mp4"
        with av.open(str(path), "w") as out:
            stream = None
            for rgb in _frames(source, frames):
                if stream is None:
                    stream = out.add_stream(codec, rate=25)
                    stream.height, stream.width = rgb.shape[:2]
                    stream.pix_fmt = "yuv420p"
                for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
        return path.read_bytes()


def mp4_cut_before_index(source: Path) -> bytes:
    """An MP4 whose moov atom (the index) comes after the media data, cut before it."""
    data = mp4_bytes(source)
    moov = data.rfind(b"moov")
    if moov < data.find(b"mdat"):
        raise RuntimeError("expected the moov atom after mdat")
    return data[: moov - 4]


def header_only(source: Path, size: int = 512) -> bytes:
    """The first bytes of a real clip: the container signature and nothing playable."""
    return source.read_bytes()[:size]


def truncated(source: Path, fraction: float = 0.02) -> bytes:
    return source.read_bytes()[: int(source.stat().st_size * fraction)]


def bit_flipped(source: Path, start: int = 12, end: int = 4096, seed: int = 7) -> bytes:
    """A real clip with every byte of its headers after the signature XORed with noise."""
    data = bytearray(source.read_bytes())
    noise = np.random.default_rng(seed).integers(1, 256, end - start, dtype=np.uint8)
    data[start:end] = (np.frombuffer(bytes(data[start:end]), np.uint8) ^ noise).tobytes()
    return bytes(data)


def zip_of(source: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(source.name, source.read_bytes()[:100_000])
    return buffer.getvalue()


def audio_only_mp4(
    seconds: float = 1.0, rate: int = 44100, cover_art: bool = False, muxer: str = "mp4"
) -> bytes:
    """An MP4 holding one AAC track and no video stream: it sniffs as MP4. With `cover_art`,
    the album's picture rides along as music apps attach it (a video stream of one still
    frame, not a video); muxer "ipod" writes an M4A (major brand 'M4A ')."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "audio.mp4"
        with av.open(str(path), "w", format=muxer) as out:
            stream = out.add_stream("aac", rate=rate)
            if cover_art:
                picture = out.add_stream("mjpeg", rate=1)
                picture.width, picture.height, picture.pix_fmt = 64, 48, "yuvj420p"
                picture.disposition = av.stream.Disposition.attached_pic
                grey = np.full((48, 64, 3), 128, np.uint8)
                cover = av.VideoFrame.from_ndarray(grey, format="rgb24").reformat(format="yuvj420p")
                out.mux(picture.encode(cover))
                out.mux(picture.encode(None))
            samples = int(seconds * rate)
            t = np.arange(samples) / rate
            tone = (np.sin(2 * np.pi * 440 * t) * 0.3).astype(np.float32)[None, :]
            for start in range(0, samples, 1024):
                frame = av.AudioFrame.from_ndarray(
                    tone[:, start : start + 1024], format="fltp", layout="mono"
                )
                frame.sample_rate, frame.pts = rate, start
                frame.time_base = Fraction(1, rate)
                for packet in stream.encode(frame):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
        return path.read_bytes()


def tiny_video() -> bytes:
    """A 16x16 pixel MJPEG AVI of 10 frames."""
    return mjpg_avi_bytes(16, 16, 10)


def eight_k_video() -> bytes:
    """Two 7680x4320 frames at 25 fps: real 8K, beyond the default pixels a second."""
    return mjpg_avi_bytes(7680, 4320, 2)


def endless_multipart(
    field: str, filename: str, total_bytes: int, chunk_size: int = 1024 * 1024
) -> tuple[str, Iterator[bytes]]:
    """(content type, generator body) of a multipart upload of `total_bytes` of AVI-looking data.

    A generator has no length, so the client sends it chunked, without Content-Length.
    """

    def chunks() -> Iterator[bytes]:
        yield (
            f"--{_BOUNDARY}\r\n"
            f'Content-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
            "Content-Type: video/x-msvideo\r\n\r\n"
        ).encode()
        yield b"RIFF\x00\x00\x00\x00AVI LIST"
        block = bytes(chunk_size)
        sent = 0
        while sent < total_bytes:
            yield block
            sent += chunk_size
        yield f"\r\n--{_BOUNDARY}--\r\n".encode()

    return f"multipart/form-data; boundary={_BOUNDARY}", chunks()
