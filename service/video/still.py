"""One frame of a video as a player shows it, for a preview the browser cannot draw itself.

Browsers decode neither AVI nor MPEG, and most decode no HEVC (iPhones' format) outside Apple's:
the page then asks the server for the frame its style preview starts from.

    picture = still_frame(path, at_s=1.0, max_side=480, limits=DecodeLimits())   # RGB uint8
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from service.video.decode import DecodeLimits, VideoDecodeError, probe
from service.video.frames import displayed, displayed_size
from service.video.transcode import output_size


def still_frame(path: Path, at_s: float, max_side: int, limits: DecodeLimits) -> np.ndarray:
    """The frame shown `at_s` seconds after the first (the last one of a shorter video): upright,
    square pixels, HDR mapped to SDR, at most `max_side` px on its long side."""
    probe(path, limits)
    shown: av.VideoFrame | None = None
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        start: float | None = None
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.error.InvalidDataError:
                continue  # a damaged packet, skipped as players skip it
            for frame in frames:
                shown = frame
                if frame.time is None:
                    continue
                start = frame.time if start is None else start
                if frame.time - start >= at_s:
                    return _as_shown(frame, stream, max_side)
        if shown is None:
            raise VideoDecodeError("the file holds no decodable video frame")
        return _as_shown(shown, stream, max_side)


def _as_shown(
    frame: av.VideoFrame, stream: av.video.stream.VideoStream, max_side: int
) -> np.ndarray:
    size = output_size(*displayed_size(frame, stream.sample_aspect_ratio), max_side)
    return displayed(frame, size)
