"""How long a stylize job may run: the settings' limits, or more for a video that needs more.

A job's time grows with its frames and their size: a minute of 1280x720 takes several minutes
on 2 cores, where a 320x240 clip takes seconds. One fixed limit either fails long videos that
were accepted, or lets a stuck job hold a worker for as long as the longest video needs. The
API sets each job's limits from its video when it queues it (Celery's per-task time limits).

    soft_s, hard_s = stylize_time_limits(info, settings)
"""

from __future__ import annotations

import math

from service.settings import Settings
from service.video.decode import VideoInfo
from service.video.transcode import output_size


def stylize_time_limits(info: VideoInfo, settings: Settings) -> tuple[int, int]:
    """(soft, hard) seconds for a stylize job on the video `info` describes: the settings'
    limits, or the time its frames are allowed at the output size when that is more."""
    width, height = output_size(info.width, info.height, settings.stylize_max_side)
    per_frame_s = (
        settings.stylize_seconds_per_frame
        + settings.stylize_seconds_per_megapixel * width * height / 1e6
    )
    soft = max(settings.job_soft_time_limit_s, math.ceil(info.frames * per_frame_s))
    # The grace between the soft limit (the job fails, cleanly) and the hard one (its process
    # is killed) stays the settings'.
    grace = max(1, settings.job_time_limit_s - settings.job_soft_time_limit_s)
    return soft, soft + grace
