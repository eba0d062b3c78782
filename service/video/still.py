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
from service.video.frames import decodable_frames, displayed, displayed_size, open_video
from service.video.transcode import output_size


def still_frame(path: Path, at_s: float, max_side: int, limits: DecodeLimits) -> np.ndarray:
    """The frame shown `at_s` seconds after the first (the last one of a shorter video): upright,
    square pixels, HDR mapped to SDR, at most `max_side` px on its long side."""
    probe(path, limits)
    shown: av.VideoFrame | None = None
    with open_video(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        start: float | None = None
        for frame in decodable_frames(container):
            shown = frame
            if frame.time is None:
                continue
            start = frame.time if start is None else start
            if frame.time - start >= at_s:
                break
        if shown is None:
            raise VideoDecodeError("the file holds no decodable video frame")
        size = output_size(*displayed_size(shown, stream.sample_aspect_ratio), max_side)
        return displayed(shown, size)
