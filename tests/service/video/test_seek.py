"""Long videos' sampled frames read by seeking: the same frames as decoding from the start."""

from __future__ import annotations

import random
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from service.video.decode import (
    DecodeLimits,
    VideoDecodeError,
    VideoLimitExceeded,
    probe,
    read_frame_groups,
    read_sampled_frames,
)
from service.video.preprocess import sample_indices
from service.video.seek import decode_at, index_frames
from tests.utils.corpus import real_frames, write_recording, write_video
from tests.utils.data import YOYO_CLIP

FRAMES = 120
KEYFRAME_EVERY = 12
SEEKING = DecodeLimits(seek_above_pixels=0)
DECODING_ALL = DecodeLimits(seek_above_pixels=None)


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return real_frames(YOYO_CLIP, FRAMES, (160, 120))


def whole_and_windows(total: int) -> list[list[int]]:
    """What /classify with segments asks for: 8 frames over the whole, 8 in each of 3 windows."""
    third = total // 3
    windows = [(a, a + third) for a in (0, third, 2 * third)]
    return [sample_indices(total, 8)] + [
        [a + i for i in sample_indices(b - a, 8)] for a, b in windows
    ]


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("camera.mp4", {}),
        ("phone.mov", {"rotation": 90}),
        ("variable_rate.mp4", {"times_s": [Fraction(i * i, 4000) for i in range(FRAMES)]}),
        ("browser.mkv", {"container": "matroska"}),
        ("hdr_phone.mov", {"codec": "libx265", "pix_fmt": "yuv420p10le", "rotation": 270}),
    ],
)
def test_seeking_gives_the_frames_decoding_from_the_start_gives(
    tmp_path: Path, frames: list[np.ndarray], name: str, options: dict
) -> None:
    path = write_video(tmp_path / name, frames, keyframe_every=KEYFRAME_EVERY, **options)
    sought, sought_info = read_frame_groups(path, whole_and_windows, 112, SEEKING)
    decoded, decoded_info = read_frame_groups(path, whole_and_windows, 112, DECODING_ALL)

    assert sought_info == decoded_info
    assert sought_info.frames == FRAMES
    for sought_group, decoded_group in zip(sought, decoded, strict=True):
        for a, b in zip(sought_group, decoded_group, strict=True):
            assert a.shape == b.shape and np.array_equal(a, b)


def test_a_browser_recording_is_counted_from_its_index(
    tmp_path: Path, frames: list[np.ndarray]
) -> None:
    path = write_recording(tmp_path / "recording.webm", frames)
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) <= 0  # the file states no frame count
    capture.release()
    assert probe(path, DecodeLimits()).frames == FRAMES
    # 4 s at 30 fps: the duration limit holds although the file does not state its duration.
    with pytest.raises(VideoLimitExceeded, match="^the video lasts 4 s, longer than the limit"):
        probe(path, DecodeLimits(max_duration_s=3.0))
    index = index_frames(path)
    assert index is not None
    found, decoded = decode_at(path, index, [100, 119], resize_short=64)  # without cues, too
    assert sorted(found) == [100, 119] and decoded < FRAMES // 2


def test_stretches_without_a_wanted_frame_are_not_decoded(
    tmp_path: Path, frames: list[np.ndarray]
) -> None:
    path = write_video(tmp_path / "camera.mp4", frames, keyframe_every=KEYFRAME_EVERY)
    index = index_frames(path)
    assert index is not None and index.frames == FRAMES
    assert len(index.keyframes) >= FRAMES // KEYFRAME_EVERY

    found, decoded = decode_at(path, index, [3, 5, 100, 119], resize_short=64)
    assert sorted(found) == [3, 5, 100, 119]
    # From the first keyframe to frame 5, then from the keyframe before 100 to the end: a third.
    assert decoded <= 6 + 2 * KEYFRAME_EVERY + 8  # B-frames may show a few frames more


def test_an_avi_is_decoded_from_the_start() -> None:
    assert index_frames(YOYO_CLIP) is None  # AVI timestamps can be mislabelled: not sought
    groups, info = read_frame_groups(YOYO_CLIP, whole_and_windows, 112, SEEKING)
    assert info.frames == 187 and len(groups) == 4


def test_cut_and_corrupted_files_are_refused_or_read_never_crash(
    tmp_path: Path, frames: list[np.ndarray]
) -> None:
    """What a broken upload meets on the seeking path: a VideoDecodeError (422), or frames."""
    sources = [
        write_video(tmp_path / "camera.mp4", frames, keyframe_every=KEYFRAME_EVERY),
        write_video(tmp_path / "browser.mkv", frames, keyframe_every=8, container="matroska"),
        write_recording(tmp_path / "recording.webm", frames),
    ]
    rng = random.Random(0)
    refused = 0
    for i in range(30):
        data = bytearray(sources[i % len(sources)].read_bytes())
        if i % 2:
            data = data[: rng.randrange(200, len(data))]
        for _ in range(rng.randrange(1, 40)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        broken = tmp_path / f"broken{i}{sources[i % len(sources)].suffix}"
        broken.write_bytes(bytes(data))
        try:
            read, _ = read_sampled_frames(broken, 8, 64, SEEKING)
        except VideoDecodeError:
            refused += 1
            continue
        assert len(read) == 8 and all(min(frame.shape[:2]) == 64 for frame in read)
    assert 0 < refused < 30  # both kinds of outcome were met
