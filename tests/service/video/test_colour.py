"""Colour: HDR phone video is painted and classified as it looks, and results say BT.709."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from service.video.decode import DecodeLimits, read_sampled_frames
from service.video.frames import upright
from service.video.hdr import frame_as_sdr, to_sdr
from service.video.preprocess import resize_short_side, sample_indices
from service.video.transcode import TranscodeOptions, restyle_video
from tests.utils.corpus import (
    PATCH_COLOURS,
    colour_patches,
    decoded_frames,
    patch_colours,
    real_frames,
    write_hdr_video,
    write_video,
)
from tests.utils.data import AUDIO_CLIP

HLG, PQ = 18, 16  # the transfer tags of ITU-R BT.2100


def grey_signal(level: float) -> np.ndarray:
    return np.full((4, 4, 3), round(level * 65535), np.uint16)


@pytest.mark.parametrize(
    ("transfer", "signal", "expected"),
    [
        # BT.2408: HDR reference white, HLG 75 % or PQ 58 % (203 cd/m²), is SDR's white, which
        # the highlight roll-off leaves at 245 to make room for brighter things.
        (HLG, 0.75, 245),
        (PQ, 0.5806, 245),
        # BT.2408's 18 % grey card: HLG 38 %, PQ 38 % (26 cd/m²), 26 / 203 of white.
        (HLG, 0.38, 108),
        (PQ, 0.3807, 108),
        # A 1000 cd/m² highlight is near the top, not clipped with everything above white.
        (HLG, 1.0, 255),
        (PQ, 0.7518, 254),
        (HLG, 0.0, 0),
        (PQ, 0.0, 0),
    ],
)
def test_hdr_signal_levels_land_where_bt2408_puts_them(
    transfer: int, signal: float, expected: int
) -> None:
    sdr = to_sdr(grey_signal(signal), transfer)
    assert sdr.dtype == np.uint8
    assert np.abs(sdr.astype(int) - expected).max() <= 1


def test_a_pure_bt2020_green_stays_green_and_the_roll_off_keeps_order() -> None:
    green = np.zeros((2, 2, 3), np.uint16)
    green[..., 1] = round(0.75 * 65535)
    red, green_sdr, blue = to_sdr(green, HLG)[0, 0]
    assert green_sdr > 200 and red < 10 and blue < 60  # out of BT.709's gamut: clipped, not lost
    levels = [to_sdr(grey_signal(s), HLG)[0, 0, 0] for s in np.linspace(0, 1, 41)]
    assert all(a <= b for a, b in zip(levels, levels[1:], strict=False))


@pytest.mark.parametrize(
    ("transfer", "rotation", "bt2020"), [("hlg", 90, True), ("pq", 0, True), ("hlg", 0, False)]
)
def test_an_hdr_phone_video_comes_back_looking_as_it_did(
    tmp_path: Path, transfer: str, rotation: int, bt2020: bool
) -> None:
    # HLG in BT.709 primaries (some cameras) must not be converted from BT.2020: oversaturated.
    pictures = real_frames(AUDIO_CLIP, 6, (320, 240))
    path = tmp_path / f"{transfer}.mov"
    source = write_hdr_video(path, pictures, transfer, rotation=rotation, bt2020=bt2020)
    with av.open(str(source)) as container:
        as_if_sdr = upright(next(container.decode(video=0)))
    # Read as SDR, the signal is flat and washed out: why the job has to map it.
    assert np.abs(as_if_sdr.astype(int) - pictures[0]).mean() > 10
    result = tmp_path / "result.mp4"
    assert restyle_video(source, result, lambda batch: batch, TranscodeOptions()) == 6
    shown = decoded_frames(result)
    assert shown[0].shape == (240, 320, 3)
    for before, after in zip(pictures, shown, strict=True):
        assert np.abs(after.astype(int) - before).mean() < 4


@pytest.mark.parametrize("transfer", ["hlg", "pq"])
def test_the_mapping_agrees_with_opencvs_own(tmp_path: Path, transfer: str) -> None:
    pictures = real_frames(AUDIO_CLIP, 4, (320, 240))
    source = write_hdr_video(tmp_path / f"{transfer}.mov", pictures, transfer)
    with av.open(str(source)) as container:
        ours = frame_as_sdr(next(container.decode(video=0)))
    capture = cv2.VideoCapture(str(source), cv2.CAP_FFMPEG)
    ok, opencv_bgr = capture.read()
    capture.release()
    assert ok and np.abs(ours.astype(int) - opencv_bgr[..., ::-1]).mean() < 2.5


@pytest.mark.parametrize(("transfer", "rotation"), [("hlg", 270), ("pq", 0)])
def test_classify_reads_a_long_hdr_video_by_seeking_as_it_looks(
    tmp_path: Path, transfer: str, rotation: int
) -> None:
    # Short videos are decoded by OpenCV, which tone-maps HDR; long ones are read by seeking.
    pictures = real_frames(AUDIO_CLIP, 24, (320, 240))
    source = write_hdr_video(tmp_path / f"{transfer}.mov", pictures, transfer, rotation=rotation)
    read = {
        way: read_sampled_frames(source, 8, 112, DecodeLimits(seek_above_pixels=above))[0]
        for way, above in (("seeking", 0), ("from the start", None))
    }
    for i, index in enumerate(sample_indices(24, 8)):
        truth = resize_short_side(pictures[index], 112)
        for way, frames in read.items():
            assert frames[i].shape == (112, 149, 3), way
            assert np.abs(frames[i].astype(int) - truth).mean() < 4, way


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
