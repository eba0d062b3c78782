"""A few frames of a long video without decoding all of it: seek over the stretches not needed.

Decoding every frame to keep eight costs minutes on a ten-minute 4K phone video. Container
indexes (MP4, MOV, Matroska, WebM) give every frame's timestamp without decoding, so the frame
at display position i is known; decoding starts at the last keyframe before it and a stretch
between two keyframes that holds no wanted frame is never decoded. The frames are the ones a
decode from the start would give, turned upright as a player shows them.

    index = index_frames(path)          # None: not a container we can seek in exactly
    found, decoded = decode_at(path, index, [0, 900, 1799], resize_short=128)
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from service.video.frames import Orientation, demuxed, open_video, orientation
from service.video.hdr import frame_as_sdr, is_hdr
from service.video.preprocess import bgr_to_rgb, resize_short_side, short_side_size

# Formats whose index holds every frame's presentation time; AVI and MPEG streams can carry
# mislabelled or missing times (packed B-frames), so they are decoded from the start instead.
SEEKABLE_FORMATS = frozenset({"mov", "mp4", "matroska", "webm"})


@dataclass(frozen=True)
class FrameIndex:
    """Every frame's presentation time in display order, and the keyframes' times, sorted."""

    times: list[int]
    keyframes: list[int]

    @property
    def frames(self) -> int:
        return len(self.times)


def index_frames(path: Path) -> FrameIndex | None:
    """The frame index from the container alone (no decoding); None when it cannot be trusted."""
    try:
        with open_video(path) as container:
            if not SEEKABLE_FORMATS & set(container.format.name.split(",")):
                return None
            stream = container.streams.video[0]
            times, keyframes = [], []
            for packet in demuxed(container, stream):
                if packet.size == 0 or packet.is_discard:  # end of stream; cut by an edit list
                    continue
                if packet.pts is None:
                    return None
                times.append(packet.pts)
                if packet.is_keyframe:
                    keyframes.append(packet.pts)
    except (av.FFmpegError, OSError, ValueError, IndexError):  # unreadable: decode from the start
        return None
    times.sort()
    if not keyframes or len(set(times)) != len(times):
        return None
    return FrameIndex(times, sorted(keyframes))


def _as_opencv_reads(frame: av.VideoFrame, resize_short: int, turn: Orientation) -> np.ndarray:
    """The frame as RGB the way OpenCV's decoder gives it (BGR through swscale's bicubic path,
    turned upright), so that both ways give the same pixels, 10-bit sources included; short
    side `resize_short`. HDR, which OpenCV tone-maps, is tone-mapped here too (to within a
    level or two of OpenCV's)."""
    if is_hdr(frame):
        width, height = short_side_size(frame.width, frame.height, resize_short)
        array = frame_as_sdr(frame, (width, height))  # scaled first: fewer pixels to map
    else:
        array = bgr_to_rgb(frame.to_ndarray(format="bgr24", interpolation="BICUBIC"))
    array = turn.apply(array)
    return resize_short_side(array, resize_short)


def decode_at(
    path: Path, index: FrameIndex, wanted: list[int], resize_short: int
) -> tuple[dict[int, np.ndarray], int]:
    """The frames at display positions `wanted` (short side `resize_short`) and how many frames
    were decoded; a wanted frame that does not come out where the index says is left out."""
    targets = sorted({index.times[i]: i for i in wanted}.items())
    found: dict[int, np.ndarray] = {}
    decoded = 0
    try:
        with open_video(path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            frames = None
            position: int | None = None  # time of the last frame decoded
            turn: Orientation | None = None  # the display matrix, read from the first frame
            for time, display_index in targets:
                keyframe = index.keyframes[max(0, bisect.bisect_right(index.keyframes, time) - 1)]
                if frames is None or position is None or not keyframe <= position < time:
                    container.seek(keyframe, stream=stream, backward=True, any_frame=False)
                    frames = container.decode(stream)
                for frame in frames:
                    decoded += 1
                    position = frame.pts
                    if position is None or position >= time:
                        if position == time:
                            turn = orientation(frame) if turn is None else turn
                            found[display_index] = _as_opencv_reads(frame, resize_short, turn)
                        break
    except av.FFmpegError:
        pass  # what was found stands; the caller decodes from the start for the rest
    return found, decoded
