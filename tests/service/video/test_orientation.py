"""Display matrices as players apply them: a phone's quarter turn, an editor's mirror, or both.

Each file stores a portrait picture with a marker in its top-left corner turned and mirrored as
its matrix says (`write_video`); Chromium shows all eight of these files portrait with the
marker top-left. The job, the preview and /classify must read them the same way.
"""

from __future__ import annotations

import gc
from pathlib import Path

import av
import numpy as np
import pytest

from service.video.decode import DecodeLimits, probe, read_sampled_frames
from service.video.frames import Orientation, orientation
from service.video.still import still_frame
from service.video.transcode import TranscodeOptions, restyle_video
from tests.utils.corpus import decoded_frames, marked_frames, write_video
from tests.utils.data import AUDIO_CLIP

PORTRAIT = (96, 160)  # width, height as shown
TURNS = [(0, True), (90, True), (180, True), (270, True), (90, False), (180, False)]


def marker_is_top_left(picture: np.ndarray) -> bool:
    """The marker's corner is the brightest of the four, by a wide margin."""
    side = min(picture.shape[:2]) // 4
    corners = [
        picture[:side, :side],
        picture[:side, -side:],
        picture[-side:, :side],
        picture[-side:, -side:],
    ]
    means = [float(corner.mean()) for corner in corners]
    return means[0] > 240 and max(means[1:]) < 200


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return marked_frames(AUDIO_CLIP, 12, PORTRAIT)


@pytest.mark.parametrize(("rotation", "mirrored"), TURNS)
def test_a_job_turns_and_mirrors_as_the_matrix_says(
    tmp_path: Path, frames: list[np.ndarray], rotation: int, mirrored: bool
) -> None:
    source = write_video(tmp_path / "in.mov", frames, rotation=rotation, mirrored=mirrored)
    result = tmp_path / "out.mp4"
    assert restyle_video(source, result, lambda batch: batch, TranscodeOptions()) == 12
    shown = decoded_frames(result)
    assert shown[0].shape == (PORTRAIT[1], PORTRAIT[0], 3)
    assert marker_is_top_left(shown[0])


@pytest.mark.parametrize(("rotation", "mirrored"), TURNS)
@pytest.mark.parametrize("seek_above_pixels", [0, None], ids=["seeking", "decoding-all"])
def test_classify_reads_pictures_as_the_matrix_says(
    tmp_path: Path,
    frames: list[np.ndarray],
    rotation: int,
    mirrored: bool,
    seek_above_pixels: int | None,
) -> None:
    source = write_video(
        tmp_path / "in.mov", frames, rotation=rotation, mirrored=mirrored, keyframe_every=4
    )
    limits = DecodeLimits(seek_above_pixels=seek_above_pixels)
    info = probe(source, limits)
    assert (info.width, info.height) == PORTRAIT
    sampled, _ = read_sampled_frames(source, 4, 96, limits)
    assert all(frame.shape == (160, 96, 3) for frame in sampled)
    assert all(marker_is_top_left(frame) for frame in sampled)


@pytest.mark.parametrize(("rotation", "mirrored"), TURNS)
def test_the_preview_still_is_turned_and_mirrored_as_the_matrix_says(
    tmp_path: Path, frames: list[np.ndarray], rotation: int, mirrored: bool
) -> None:
    source = write_video(tmp_path / "in.mov", frames, rotation=rotation, mirrored=mirrored)
    still = still_frame(source, 0.2, 480, DecodeLimits())
    assert still.shape == (160, 96, 3) and marker_is_top_left(still)


def test_reading_the_display_matrix_leaves_the_frame_to_reference_counting(
    tmp_path: Path, frames: list[np.ndarray]
) -> None:
    # A frame left in a reference cycle is freed by the garbage collector, at any moment and on
    # any thread: with the pipeline's threads running, results differed from run to run.
    source = write_video(tmp_path / "in.mov", frames, rotation=90, mirrored=True)
    with av.open(str(source)) as container:
        frame = next(container.decode(video=0))
        gc.collect()
        assert orientation(frame) == Orientation(True, True, True)
        del frame
        assert gc.collect() == 0


@pytest.mark.parametrize("name", ["in.mov", "in.mp4"])
@pytest.mark.parametrize("seek_above_pixels", [0, None], ids=["seeking", "decoding-all"])
def test_a_title_not_in_utf8_is_no_obstacle_to_the_job_the_preview_or_classify(
    tmp_path: Path, frames: list[np.ndarray], name: str, seek_above_pixels: int | None
) -> None:
    # Windows tools wrote titles (and source paths) in their code page: b"\x85" is "..." there.
    title = b"\x85 Caf\xe9 \\\\clips\\\\punch.avi"
    source = write_video(tmp_path / name, frames, rotation=90, keyframe_every=4, title=title)
    result = tmp_path / "out.mp4"
    assert restyle_video(source, result, lambda batch: batch, TranscodeOptions()) == 12
    assert marker_is_top_left(decoded_frames(result)[0])
    limits = DecodeLimits(seek_above_pixels=seek_above_pixels)
    assert marker_is_top_left(still_frame(source, 0.2, 480, limits))
    sampled, _ = read_sampled_frames(source, 4, 96, limits)
    assert all(frame.shape == (160, 96, 3) and marker_is_top_left(frame) for frame in sampled)
