"""Stream a video through a frame transform into a browser-playable H.264 MP4, keeping its audio.

Decode, transform in batches and encode as the packets arrive, so memory stays flat whatever
the length. The output has the input's frame count, frame rate, duration and audio (copied when MP4
can hold its codec, re-encoded to AAC otherwise); frames are capped at `max_side` (never
upscaled) with even dimensions, yuv420p, and the index up front (`+faststart`).

    restyle_video(src, dst, lambda frames: [f[..., ::-1] for f in frames], TranscodeOptions())
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from service.video.decode import VideoDecodeError

# Audio codecs the MP4 muxer takes as they are; others are re-encoded to AAC.
MP4_AUDIO_CODECS = {"aac", "mp3", "mp3float", "alac", "opus", "ac3", "eac3"}

FrameBatchFn = Callable[[list[np.ndarray]], list[np.ndarray]]
ProgressFn = Callable[[int, int], None]


class TranscodeCancelled(Exception):
    """The caller asked to stop; no output file is left behind."""


@dataclass(frozen=True)
class TranscodeOptions:
    max_side: int = 1280
    batch_size: int = 8
    crf: int = 20
    preset: str = "veryfast"
    # A file whose header declares N frames but yields fewer than this share of them is cut
    # short or damaged: refuse it rather than deliver a video that stops half-way.
    min_declared_fraction: float = 0.9


def output_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """Even dimensions no larger than the input, with the longest side at most `max_side`."""
    scale = min(1.0, max_side / max(width, height))
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


def estimate_frame_count(stream: av.video.stream.VideoStream) -> int:
    if stream.frames:
        return int(stream.frames)
    if stream.duration and stream.average_rate:
        return max(1, round(float(stream.duration * stream.time_base * stream.average_rate)))
    return 0


class _Encoder:
    """Owns the output container: an H.264 stream and, when the input has one, its audio."""

    def __init__(
        self,
        dst: Path,
        source: av.container.InputContainer,
        size: tuple[int, int],
        options: TranscodeOptions,
    ) -> None:
        in_video = source.streams.video[0]
        self.container = av.open(str(dst), "w", format="mp4", options={"movflags": "+faststart"})
        rate = in_video.average_rate or Fraction(25)
        self.video = self.container.add_stream("libx264", rate=rate)
        self.video.width, self.video.height = size
        self.video.pix_fmt = "yuv420p"
        # Constant frame rate, frame i at i / rate: container timestamps are not trustworthy
        # (AVIs with packed B-frames decode with out-of-order pts).
        self.video.codec_context.time_base = 1 / rate
        self.video.options = {"crf": str(options.crf), "preset": options.preset}
        self.frames_written = 0
        self.in_audio = source.streams.audio[0] if source.streams.audio else None
        self.audio = self.audio_resampler = None
        if self.in_audio is not None:
            if self.in_audio.codec_context.name in MP4_AUDIO_CODECS:
                self.audio = self.container.add_stream_from_template(self.in_audio)
            else:
                self.audio = self.container.add_stream("aac", rate=self.in_audio.rate or 44100)
                self.audio_resampler = av.AudioResampler(
                    format="fltp", layout="stereo", rate=self.audio.rate
                )

    def write_frames(self, frames: list[np.ndarray]) -> None:
        for array in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")
            frame.pts = self.frames_written
            self.frames_written += 1
            self.container.mux(self.video.encode(frame))

    def write_audio(self, packet: av.Packet) -> None:
        if self.audio_resampler is None:
            if packet.dts is None:
                return
            packet.stream = self.audio
            self.container.mux(packet)
            return
        for frame in packet.decode():
            for resampled in self.audio_resampler.resample(frame):
                self.container.mux(self.audio.encode(resampled))

    def close(self) -> None:
        self.container.mux(self.video.encode(None))
        if self.audio_resampler is not None:
            self.container.mux(self.audio.encode(None))
        self.container.close()


def restyle_video(
    src: Path,
    dst: Path,
    transform: FrameBatchFn,
    options: TranscodeOptions,
    on_progress: ProgressFn | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> int:
    """Write `transform` applied to every frame of `src` to `dst`; returns the frame count.

    The output appears at `dst` only when complete (written beside it, then renamed).
    """
    partial = dst.with_name(f".{dst.name}.partial")
    try:
        try:
            source = av.open(str(src))
        except av.error.FFmpegError as error:
            raise VideoDecodeError(f"the file could not be opened as a video ({error})") from error
        with source:
            if not source.streams.video:
                raise VideoDecodeError("the file has no video stream")
            frames_done = _run(source, partial, transform, options, on_progress, should_stop)
        if frames_done == 0:
            raise VideoDecodeError("the file holds no decodable video frame")
        os.replace(partial, dst)
        return frames_done
    finally:
        with suppress(NotADirectoryError):  # a broken storage must not hide the first error
            partial.unlink(missing_ok=True)


def _run(source, partial, transform, options, on_progress, should_stop) -> int:
    in_video = source.streams.video[0]
    in_video.thread_type = "AUTO"
    size = output_size(
        in_video.codec_context.width, in_video.codec_context.height, options.max_side
    )
    total = estimate_frame_count(in_video)
    encoder = _Encoder(partial, source, size, options)
    batch, done = [], 0

    def flush() -> None:
        nonlocal done
        if should_stop and should_stop():
            raise TranscodeCancelled("the job was cancelled")
        encoder.write_frames(transform(batch))
        done += len(batch)
        batch.clear()
        if on_progress:
            on_progress(done, max(total, done))

    try:
        streams = [in_video] + ([encoder.in_audio] if encoder.in_audio is not None else [])
        for packet in source.demux(*streams):
            if packet.stream.type == "audio":
                encoder.write_audio(packet)
                continue
            try:
                decoded = packet.decode()
            except av.error.InvalidDataError:
                continue  # a damaged packet: skip it as players do, keep the rest
            for frame in decoded:
                batch.append(_resize(frame.to_ndarray(format="rgb24"), size))
                if len(batch) >= options.batch_size:
                    flush()
        if batch:
            flush()
    finally:
        encoder.close()
    declared = int(in_video.frames or 0)
    if declared and done < declared * options.min_declared_fraction:
        raise VideoDecodeError(
            f"the video breaks off after frame {done} of the {declared} its header declares; "
            "the file is truncated or damaged"
        )
    return done


def _resize(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if (frame.shape[1], frame.shape[0]) == size:
        return frame
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
