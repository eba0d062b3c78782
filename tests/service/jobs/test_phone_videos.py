"""Phone and browser videos through the API: rotation, variable frame rate, WebM/MKV, DCI 4K.

Every file is built at test time from a real clip (tests/utils/corpus.py); each result is checked
by its content: which way is up, when each frame shows, whether the sound is there.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from service.inference.stylize import FeedForwardStyle
from tests.service.conftest import JobStack
from tests.utils.corpus import (
    Audio,
    beep_starts,
    beeps,
    cut_without_reencoding,
    decoded_frames,
    frame_times,
    marked_frames,
    real_frames,
    write_avchd_clip,
    write_old_phone_3gp,
    write_vfr_flashes,
    write_video,
    write_windows_media,
)
from tests.utils.data import AUDIO_CLIP
from tests.utils.jobs import submit_job, wait_for_status
from tests.utils.styles import TEST_STYLE

# Displayed picture of the rotated files: portrait, as a phone held upright records it.
PORTRAIT = (96, 160)


@pytest.fixture(scope="module")
def engine(style_models_dir: Path) -> FeedForwardStyle:
    """The test style the worker runs, to know what a frame with no history should become."""
    return FeedForwardStyle(style_models_dir / "test_styles" / f"{TEST_STYLE}.onnx", threads=1)


def _mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b).mean())


def _stylise(stack: JobStack, clip: Path, folder: Path) -> Path:
    """POST /stylize, wait, download: the result file."""
    created = submit_job(stack.client, clip, TEST_STYLE)
    final = wait_for_status(stack.client, created["job_id"])
    assert final["state"] == "succeeded", (final, stack.worker_log.text[-2000:])
    response = stack.client.get(created["result_url"])
    assert response.status_code == 200
    result = folder / f"{clip.stem}-result.mp4"
    result.write_bytes(response.content)
    return result


def _classify(stack: JobStack, clip: Path, name: str | None = None) -> dict:
    with clip.open("rb") as video:
        response = stack.client.post("/classify", files={"file": (name or clip.name, video)})
    assert response.status_code == 200, response.text
    return response.json()


def _audio_streams(path: Path) -> int:
    with av.open(str(path)) as result:
        return len(result.streams.audio)


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_a_rotated_phone_video_comes_back_upright(
    job_stack: JobStack, engine: FeedForwardStyle, tmp_path: Path, rotation: int
) -> None:
    frames = marked_frames(AUDIO_CLIP, 12, PORTRAIT)
    clip = write_video(
        tmp_path / f"IMG_{rotation}.MOV", frames, rotation=rotation, audio=Audio(seconds=0.5)
    )
    video = _classify(job_stack, clip)["video"]
    assert (video["width"], video["height"]) == PORTRAIT  # as displayed

    result = _stylise(job_stack, clip, tmp_path)
    with av.open(str(result)) as output:
        first = next(output.decode(video=0))
        assert (first.width, first.height, first.rotation) == (*PORTRAIT, 0)  # pixels turned
    shown = decoded_frames(result)
    assert len(shown) == 12 and _audio_streams(result) == 1
    # The first frame has no history: it is the style applied to the upright picture, and far
    # from the style applied to the picture upside down (the marker is in one corner only).
    upright = engine([frames[0]])[0]
    upside_down = engine([np.ascontiguousarray(np.rot90(frames[0], 2))])[0]
    assert _mad(shown[0], upright) < 6 < 3 * _mad(shown[0], upright) < _mad(shown[0], upside_down)


def test_variable_frame_rate_keeps_every_frame_in_time_with_the_sound(
    job_stack: JobStack, engine: FeedForwardStyle, tmp_path: Path
) -> None:
    clip = write_vfr_flashes(tmp_path / "vfr.mp4", AUDIO_CLIP)
    result = _stylise(job_stack, clip.path, tmp_path)

    times = frame_times(result)
    assert len(times) == len(clip.times_s)
    assert np.allclose(times, [float(t) for t in clip.times_s], atol=1e-3), times
    with av.open(str(result)) as output, av.open(str(clip.path)) as source:
        assert output.streams.video[0].duration * output.streams.video[0].time_base == (
            pytest.approx(
                float(source.streams.video[0].duration * source.streams.video[0].time_base),
                abs=2e-3,
            )
        )
    beeps = beep_starts(result)
    flashes = [times[i] for i in clip.flash_frames]
    assert len(beeps) == len(flashes)
    assert np.abs(np.array(beeps) - flashes).max() < 1 / 30, (beeps, flashes)
    # Each flash is a flash: the style of a white frame, none of the picture before it.
    white = engine([np.full((120, 160, 3), 255, np.uint8)])[0]
    shown = decoded_frames(result)
    for index in clip.flash_frames:
        assert _mad(shown[index], white) < 4 < _mad(shown[index - 1], white)


@pytest.mark.parametrize(
    ("name", "codec", "audio"),
    [("clip.webm", "libvpx-vp9", "libopus"), ("clip.mkv", "libx264", "aac")],
)
def test_webm_and_matroska_go_through_both_routes(
    job_stack: JobStack, tmp_path: Path, name: str, codec: str, audio: str
) -> None:
    frames = real_frames(AUDIO_CLIP, 12, (160, 120))
    clip = write_video(tmp_path / name, frames, codec=codec, audio=Audio(audio, seconds=0.5))
    assert _classify(job_stack, clip)["video"]["width"] == 160
    result = _stylise(job_stack, clip, tmp_path)
    assert len(decoded_frames(result)) == 12 and _audio_streams(result) == 1


def test_an_old_phones_3gp_goes_through_both_routes(job_stack: JobStack, tmp_path: Path) -> None:
    # H.263 and AMR-NB in 3GP: refused by its name before, though its content decoded.
    clip = write_old_phone_3gp(tmp_path / "VID_2009.3gp", real_frames(AUDIO_CLIP, 15, (176, 144)))
    assert _classify(job_stack, clip)["video"]["width"] == 176
    result = _stylise(job_stack, clip, tmp_path)
    assert decoded_frames(result)[0].shape == (144, 192, 3)  # QCIF's 12:11 pixels, as shown
    with av.open(str(result)) as output:
        assert output.streams.audio[0].codec_context.name == "aac"  # AMR is no MP4 audio


def test_an_avchd_camcorder_clip_goes_through_both_routes(
    job_stack: JobStack, tmp_path: Path
) -> None:
    # .MTS was refused by its name, and M2TS's 192-byte packets were not even taken for video.
    pictures = real_frames(AUDIO_CLIP, 24, (320, 240))
    pictures = [np.roll(picture, 6 * i, axis=1) for i, picture in enumerate(pictures)]  # a pan
    clip = write_avchd_clip(tmp_path / "00012.MTS", pictures)
    assert _classify(job_stack, clip)["video"]["frames"] == 12
    result = _stylise(job_stack, clip, tmp_path)
    assert len(decoded_frames(result)) == 12
    with av.open(str(result)) as output:
        assert output.streams.audio[0].codec_context.name == "aac"  # AC-3 plays in no browser


@pytest.mark.parametrize("name", ["holiday.wmv", "VTS_01_1.VOB"])
def test_windows_media_and_dvd_files_go_through_both_routes(
    job_stack: JobStack, tmp_path: Path, name: str
) -> None:
    # Refused by their names (and WMV by its content) before, though FFmpeg reads both.
    pictures = real_frames(AUDIO_CLIP, 20, (320, 240))
    if name.endswith(".wmv"):
        clip = write_windows_media(tmp_path / name, pictures)
    else:
        clip = write_video(tmp_path / name, pictures, codec="mpeg2video", container="vob")
    assert _classify(job_stack, clip)["video"]["width"] == 320
    result = _stylise(job_stack, clip, tmp_path)
    assert len(decoded_frames(result)) == 20


def test_a_webm_named_mp4_is_decoded_by_its_content(job_stack: JobStack, tmp_path: Path) -> None:
    frames = real_frames(AUDIO_CLIP, 12, (160, 120))
    clip = write_video(tmp_path / "clip.webm", frames, codec="libvpx-vp9", container="webm")
    assert _classify(job_stack, clip, name="clip.mp4")["video"]["height"] == 120


def test_a_video_with_a_wrong_name_is_told_what_it_is(job_stack: JobStack, tmp_path: Path) -> None:
    frames = real_frames(AUDIO_CLIP, 4, (160, 120))
    clip = write_video(tmp_path / "clip.webm", frames, codec="libvpx-vp9", container="webm")
    with clip.open("rb") as video:
        response = job_stack.client.post("/classify", files={"file": ("clip.txt", video)})
    assert response.status_code == 415
    assert response.json() == {
        "detail": "'.txt' files are not accepted, but this file is a WebM video: "
        "rename it to end in .webm and upload it again",
        "code": "unsupported_media_type",
    }


def test_dci_4k_is_accepted_and_capped(job_stack: JobStack, tmp_path: Path) -> None:
    clip = write_video(tmp_path / "dci.mp4", real_frames(AUDIO_CLIP, 3, (4096, 2160)))
    video = _classify(job_stack, clip)["video"]
    assert (video["width"], video["height"]) == (4096, 2160)
    result = _stylise(job_stack, clip, tmp_path)
    with av.open(str(result)) as output:
        assert (output.streams.video[0].width, output.streams.video[0].height) == (1280, 674)
    assert len(decoded_frames(result)) == 3


# AAC is copied into the result, AC-3 decoded and encoded again as AAC.
@pytest.mark.parametrize("sound", ["aac", "ac3"])
def test_a_video_cut_without_reencoding_comes_back_from_its_cut_in_sync(
    job_stack: JobStack, engine: FeedForwardStyle, tmp_path: Path, sound: str
) -> None:
    # 2 s at 25 fps, one keyframe: a flash and a beep at 1.2 s and at 1.6 s; cut at 0.8 s, so a
    # player starts at frame 20 and shows the flashes at 0.4 and 0.8 s, each with its beep.
    frames = real_frames(AUDIO_CLIP, 50, (160, 120))
    for index in (30, 40):
        frames[index] = np.full_like(frames[index], 255)
    whole = write_video(
        tmp_path / "whole.mp4",
        frames,
        keyframe_every=50,
        audio=Audio(sound, samples=beeps([1.2, 1.6], 2.0)),
    )
    clip = cut_without_reencoding(whole, tmp_path / "cut.mp4", 0.8)
    assert len(decoded_frames(clip)) == 30  # the edit list hides the 20 frames before the cut

    assert _classify(job_stack, clip)["video"]["frames"] == 30
    result = _stylise(job_stack, clip, tmp_path)
    shown, times = decoded_frames(result), frame_times(result)
    assert len(shown) == 30 and times[0] == 0
    white = engine([np.full((120, 160, 3), 255, np.uint8)])[0]
    flashes = [index for index, frame in enumerate(shown) if _mad(frame, white) < 4]
    assert flashes == [10, 20]
    assert np.allclose(beep_starts(result), [0.4, 0.8], atol=1 / 50), beep_starts(result)
