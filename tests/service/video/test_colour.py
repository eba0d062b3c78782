"""Colour through a stylize job: results say they are BT.709 and keep their colours."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from service.video.frames import upright
from service.video.transcode import TranscodeOptions, restyle_video
from tests.utils.corpus import PATCH_COLOURS, colour_patches, patch_colours, write_video


def test_a_result_says_it_is_bt709_and_keeps_its_colours(tmp_path: Path) -> None:
    source = write_video(tmp_path / "patches.mp4", [colour_patches(1280, 720)] * 4)
    result = tmp_path / "result.mp4"
    restyle_video(source, result, lambda batch: batch, TranscodeOptions())
    with av.open(str(result)) as container:
        frame = next(container.decode(video=0))
    assert (frame.colorspace, frame.color_primaries, frame.color_trc) == (1, 1, 1)
    assert frame.color_range == 1  # limited ("tv") range, as H.264 players expect
    for shown, truth in zip(patch_colours(upright(frame)), PATCH_COLOURS, strict=True):
        assert np.abs(np.subtract(shown, truth)).max() <= 5
