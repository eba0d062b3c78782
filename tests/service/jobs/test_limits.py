"""A stylize job's time limits follow its video: frames at the output size, not one fixed time."""

from __future__ import annotations

from service.jobs.limits import stylize_time_limits
from service.settings import Settings
from service.video.decode import VideoInfo


def test_short_videos_keep_the_settings_limits_and_long_ones_get_their_frames_time() -> None:
    settings = Settings()
    assert stylize_time_limits(VideoInfo(187, 25.0, 320, 240), settings) == (840, 900)
    # A minute of 1080p at 30 fps is painted at 1280x720: 1800 x (0.02 + 0.6 x 0.9216) s.
    assert stylize_time_limits(VideoInfo(1800, 30.0, 1920, 1080), settings) == (1032, 1092)
    ten_minutes = stylize_time_limits(VideoInfo(18000, 30.0, 1280, 720), settings)
    assert ten_minutes == (10314, 10374)


def test_the_allowances_and_the_grace_come_from_the_settings() -> None:
    settings = Settings(
        job_soft_time_limit_s=10,
        job_time_limit_s=40,
        stylize_seconds_per_frame=1.0,
        stylize_seconds_per_megapixel=0.0,
        stylize_max_side=640,
    )
    assert stylize_time_limits(VideoInfo(5, 25.0, 1920, 1080), settings) == (10, 40)
    assert stylize_time_limits(VideoInfo(100, 25.0, 1920, 1080), settings) == (100, 130)
