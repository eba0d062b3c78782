"""Open, probe and decode video files with OpenCV, within limits.

Pure OpenCV + numpy (no web framework), so training can cache clips with the same decoder the
service uses. Only a long video's few sampled frames are read by seeking (`seek.py`, PyAV), and
the display matrix (rotation, mirror) is read with PyAV, which OpenCV reads only as an angle.

    frames, info = read_sampled_frames(path, count=8, resize_short=128, limits=DecodeLimits())
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import av
import cv2
import numpy as np

from service.video.frames import AS_STORED, Orientation, decodable_frames, open_video, orientation
from service.video.preprocess import bgr_to_rgb, resize_short_side, sample_indices
from service.video.seek import decode_at, index_frames

# Containers that report nonsense (0, negative, or thousands) get their fps treated as unknown.
_MAX_PLAUSIBLE_FPS = 1000.0
# The rate a video of unknown frame rate is costed at.
_ASSUMED_FPS = 30.0


class VideoDecodeError(ValueError):
    """The file is not a video we can decode; the message says why, for a person to act on."""


class VideoLimitExceeded(VideoDecodeError):
    """The video decodes but is beyond a configured limit (duration, pixels, frames)."""


class VideoTooShort(VideoDecodeError):
    """The video decodes to fewer frames than an action needs."""


@dataclass(frozen=True)
class DecodeLimits:
    max_duration_s: float = 600.0
    # One decoded frame must fit in memory (8192x4320 is ~100 MiB as RGB); anything smaller is
    # fine, as results are capped in size anyway.
    max_pixels: int = 8192 * 4320
    # What decoding costs: pixels per second of video (DCI 4K at 60 fps by default). Together
    # with max_duration_s it bounds the work one upload can ask for.
    max_pixels_per_second: int = 4096 * 2160 * 60
    max_frames: int = 60_000
    min_frames: int = 2
    # Below this a frame holds too little picture to recognise or restyle anything.
    min_side: int = 32
    # Long side over short side. Cinema scope is 2.4, a phone's panorama video about 4; a thinner
    # strip is not footage of an action, and restyled (long side capped at 1280) it would be
    # only a few pixels tall.
    max_aspect_ratio: float = 16.0
    # Decoded frames one request may hold at once (segment mode picks 8 per window).
    max_decoded_bytes: int = 512 * 2**20
    # Videos of more pixels than this in all (13 s of 1080p at 30 fps; training clips are far
    # below it) have their sampled frames read by seeking rather than by decoding every frame;
    # None decodes every video from the start.
    seek_above_pixels: int | None = 400_000_000


@dataclass(frozen=True)
class VideoInfo:
    frames: int
    fps: float
    width: int
    height: int

    @property
    def duration_s(self) -> float:
        return self.frames / self.fps if self.fps > 0 else 0.0


@contextmanager
def _capture(path: Path) -> Iterator[cv2.VideoCapture]:
    """OpenCV's reader giving frames as stored: it would turn them by the display matrix's angle
    alone, which shows a mirrored video upside down; `display_orientation` is applied instead."""
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        if not capture.isOpened():
            raise VideoDecodeError("the file could not be opened as a video")
        capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)
        yield capture
    finally:
        capture.release()


def display_orientation(path: Path) -> Orientation:
    """How players turn and mirror the video's pictures: its first frame's display matrix.
    Refuses a file with sound but no moving picture (a song, with or without its cover art)."""
    try:
        with open_video(path) as container:
            _check_has_video(container)
            first = next(decodable_frames(container), None)
    except VideoDecodeError:
        raise
    except (av.FFmpegError, IndexError, OSError, ValueError):
        return AS_STORED  # OpenCV's own checks say what is wrong with such a file
    return orientation(first) if first is not None else AS_STORED


def _check_has_video(container: av.container.InputContainer) -> None:
    streams = container.streams
    if not streams.audio or any(not _is_cover_art(stream) for stream in streams.video):
        return
    if streams.video:
        raise VideoDecodeError(
            "the file holds sound and a still picture (cover art) but no video; upload a video file"
        )
    raise VideoDecodeError("the file holds sound but no video; upload a video file")


def _is_cover_art(stream: av.video.stream.VideoStream) -> bool:
    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def _reported_info(capture: cv2.VideoCapture, turn: Orientation = AS_STORED) -> VideoInfo:
    fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
    if not 0 < fps <= _MAX_PLAUSIBLE_FPS:
        fps = 0.0
    width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
    height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
    return VideoInfo(
        frames=max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)),
        fps=fps,
        width=height if turn.transpose else width,
        height=width if turn.transpose else height,
    )


def too_thin(width: int, height: int, limits: DecodeLimits) -> str | None:
    """How far a frame of this size is past `max_aspect_ratio` ("20 times wider than tall,
    beyond the limit of 16"), or None when it is within it."""
    short_side, long_side = sorted((width, height))
    if long_side <= short_side * limits.max_aspect_ratio:
        return None
    shape = "wider than tall" if width > height else "taller than wide"
    return (
        f"{long_side / short_side:.3g} times {shape}, "
        f"beyond the limit of {limits.max_aspect_ratio:g}"
    )


def _check_limits(info: VideoInfo, limits: DecodeLimits) -> None:
    if info.width < 1 or info.height < 1:
        raise VideoDecodeError("the file has no video stream with a picture size")
    if min(info.width, info.height) < limits.min_side:
        raise VideoLimitExceeded(
            f"frames of {info.width}x{info.height} are smaller than the minimum of "
            f"{limits.min_side} pixels a side; send a larger video"
        )
    if thin := too_thin(info.width, info.height, limits):
        raise VideoLimitExceeded(
            f"frames of {info.width}x{info.height} are {thin}; crop the video to a less "
            "extreme shape and try again"
        )
    if info.width * info.height > limits.max_pixels:
        raise VideoLimitExceeded(
            f"frames of {info.width}x{info.height} are larger than the limit of "
            f"{limits.max_pixels} pixels, more than a decoder can hold in memory; "
            "downscale the video and try again"
        )
    fps = info.fps or _ASSUMED_FPS
    if info.width * info.height * fps > limits.max_pixels_per_second:
        raise VideoLimitExceeded(
            f"the video is {info.width}x{info.height} at {fps:.3g} fps, "
            f"{info.width * info.height * fps / 1e6:.0f} million pixels a second to decode, "
            f"more than the limit of {limits.max_pixels_per_second / 1e6:.0f} million; "
            "lower its resolution or frame rate and try again"
        )
    if info.frames > limits.max_frames:
        raise VideoLimitExceeded(
            f"the video has {info.frames} frames, more than the limit of {limits.max_frames}"
        )
    if info.duration_s > limits.max_duration_s:
        raise VideoLimitExceeded(
            f"the video lasts {info.duration_s:.0f} s, longer than the limit of "
            f"{limits.max_duration_s:.0f} s; cut it shorter and try again"
        )


def probe(path: Path, limits: DecodeLimits) -> VideoInfo:
    """What the container says about the video (its size as shown), checked against `limits`."""
    return _probe(path, limits)[0]


def _probe(path: Path, limits: DecodeLimits) -> tuple[VideoInfo, Orientation]:
    turn = display_orientation(path)
    with _capture(path) as capture:
        info = _reported_info(capture, turn)
    if not info.frames and (index := index_frames(path)) is not None:
        # A browser's recording states no duration: its index counts the frames, undecoded,
        # so that the limits hold and nothing is decoded twice to count.
        info = replace(info, frames=index.frames)
    _check_limits(info, limits)
    return info, turn


def check_playable(path: Path, limits: DecodeLimits) -> VideoInfo:
    """`probe`, then decode the first `limits.min_frames` frames: refuses files that break off."""
    info = probe(path, limits)
    with _capture(path) as capture:
        decoded = 0
        while decoded < limits.min_frames and capture.grab():
            decoded += 1
    if decoded < 1:
        raise VideoDecodeError("the file holds no decodable video frame")
    if decoded < limits.min_frames:
        raise VideoTooShort(
            f"the video has {decoded} decodable frame(s); at least {limits.min_frames} are needed"
        )
    return info


def iter_frames(path: Path, limits: DecodeLimits | None = None) -> Iterator[np.ndarray]:
    """Every decodable frame of the video, in order, as RGB uint8 (H, W, 3), as players show it."""
    limits = limits or DecodeLimits()
    with _capture(path) as capture:
        turn = display_orientation(path)
        _check_limits(_reported_info(capture, turn), limits)
        for _ in range(limits.max_frames):
            ok, frame = capture.read()
            if not ok:
                return
            yield turn.apply(bgr_to_rgb(frame))


def _decode_at(
    path: Path, wanted: list[int], resize_short: int, turn: Orientation
) -> tuple[dict[int, np.ndarray], int]:
    """Decode up to the last wanted index; returns the wanted frames and how many were decoded."""
    wanted_set, found = set(wanted), {}
    decoded = 0
    with _capture(path) as capture:
        for index in range(max(wanted) + 1):
            if not capture.grab():
                break
            decoded += 1
            if index in wanted_set:
                ok, frame = capture.retrieve()
                if not ok:
                    break
                found[index] = resize_short_side(turn.apply(bgr_to_rgb(frame)), resize_short)
    return found, decoded


def _count_frames(path: Path, limits: DecodeLimits) -> int:
    with _capture(path) as capture:
        count = 0
        while count <= limits.max_frames and capture.grab():
            count += 1
    if count > limits.max_frames:
        raise VideoLimitExceeded(f"the video has more than the limit of {limits.max_frames} frames")
    return count


IndexPlan = Callable[[int], list[list[int]]]


def read_frame_groups(
    path: Path, plan: IndexPlan, resize_short: int, limits: DecodeLimits
) -> tuple[list[list[np.ndarray]], VideoInfo]:
    """Groups of frames picked by `plan(total_frames)`, all in one decoding pass.

    Each frame is resized to short side `resize_short`. Uses the container's frame count; when
    that is missing or overstated (a truncated file), the frames are counted by decoding and the
    plan is made again over the frames that really decode.
    """
    info, turn = _probe(path, limits)
    pixels = info.frames * info.width * info.height
    if limits.seek_above_pixels is not None and pixels > limits.seek_above_pixels:
        sought = _read_by_seeking(path, plan, resize_short, info)
        if sought is not None:
            return sought
    total = info.frames or _count_frames(path, limits)
    for _attempt in range(2):
        if total < limits.min_frames:
            break
        groups = plan(total)
        wanted = sorted({i for group in groups for i in group})
        found, decoded = _decode_at(path, wanted, resize_short, turn)
        if len(found) == len(wanted):
            info = VideoInfo(frames=total, fps=info.fps, width=info.width, height=info.height)
            return [[found[i] for i in group] for group in groups], info
        total = decoded if decoded < total else _count_frames(path, limits)
    if total < 1:
        raise VideoDecodeError("the file holds no decodable video frame")
    raise VideoTooShort(
        f"the video has {total} decodable frame(s); at least {limits.min_frames} are needed"
    )


def _read_by_seeking(
    path: Path, plan: IndexPlan, resize_short: int, info: VideoInfo
) -> tuple[list[list[np.ndarray]], VideoInfo] | None:
    """`read_frame_groups` for a long video, decoding only near the wanted frames; None when
    its container cannot be sought exactly (then every frame is decoded)."""
    index = index_frames(path)
    if index is None or index.frames < 2:
        return None
    groups = plan(index.frames)
    found, _ = decode_at(path, index, sorted({i for group in groups for i in group}), resize_short)
    if any(i not in found for group in groups for i in group):
        return None
    info = VideoInfo(frames=index.frames, fps=info.fps, width=info.width, height=info.height)
    return [[found[i] for i in group] for group in groups], info


def read_sampled_frames(
    path: Path, count: int, resize_short: int, limits: DecodeLimits
) -> tuple[list[np.ndarray], VideoInfo]:
    """`count` frames spread evenly over the video, each resized to short side `resize_short`."""
    groups, info = read_frame_groups(
        path, lambda total: [sample_indices(total, count)], resize_short, limits
    )
    return groups[0], info
