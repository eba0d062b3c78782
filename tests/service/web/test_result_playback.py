"""A result plays in the browser as it was made: in the colours it was painted in, at any size,
and with its sound."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest

from service.video.transcode import TranscodeOptions, restyle_video
from tests.utils.corpus import (
    PATCH_COLOURS,
    Audio,
    beeps,
    colour_patches,
    real_frames,
    write_video,
)
from tests.utils.data import AUDIO_CLIP

# Draws the video's frame at 0.1 s on a canvas and reads the pixel in the middle of each patch.
READ_PATCHES = """async ({data, count}) => {
    const video = document.createElement("video");
    video.muted = true;
    video.src = "data:video/mp4;base64," + data;
    await new Promise((done) => video.addEventListener("loadeddata", done, {once: true}));
    video.currentTime = 0.1;
    await new Promise((done) => video.addEventListener("seeked", done, {once: true}));
    const canvas = document.createElement("canvas");
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    const context = canvas.getContext("2d");
    const step = Math.floor(canvas.width / count);
    const read = () => Array.from({length: count}, (_, i) => Array.from(
        context.getImageData(i * step + step / 2, canvas.height / 2, 1, 1).data.slice(0, 3)));
    // "seeked" can come before the frame is ready to draw: then the canvas stays black (about
    // one run in twelve). No patch is black, so draw again until one shows, for up to 2 s.
    const deadline = performance.now() + 2000;
    let patches;
    do {
        context.drawImage(video, 0, 0);
        patches = read();
        if (patches.some((pixel) => pixel.some((level) => level > 0))) break;
        await new Promise((done) => setTimeout(done, 20));
    } while (performance.now() < deadline);
    return patches;
}"""


@pytest.mark.parametrize("size", [(320, 240), (1280, 720)])
def test_chromium_shows_a_result_in_its_colours(
    browser, tmp_path: Path, size: tuple[int, int]
) -> None:
    # Untagged, a 1280x720 result was read as BT.709 though written as BT.601: green 180 -> 157.
    source = write_video(tmp_path / "patches.mp4", [colour_patches(*size)] * 6)
    result = tmp_path / "result.mp4"
    restyle_video(source, result, lambda batch: batch, TranscodeOptions())
    page = browser.new_page()
    try:
        data = base64.b64encode(result.read_bytes()).decode()
        shown = page.evaluate(READ_PATCHES, {"data": data, "count": len(PATCH_COLOURS)})
    finally:
        page.close()
    # Chromium's own YUV -> RGB is a few levels off PyAV's; a wrong matrix is 20 off.
    assert np.abs(np.subtract(shown, PATCH_COLOURS)).max() <= 8, shown


# Plays the video for a second and says how many bytes of its sound Chromium decoded.
AUDIO_DECODED = """async (data) => {
    const video = document.createElement("video");
    video.src = "data:video/mp4;base64," + data;
    document.body.append(video);
    await video.play();
    await new Promise((done) => setTimeout(done, 1000));
    video.pause();
    return video.webkitAudioDecodedByteCount;
}"""


@pytest.mark.parametrize("codec", ["ac3", "eac3", "alac", "aac"])
def test_chromium_hears_a_results_sound(browser, tmp_path: Path, codec: str) -> None:
    # MP4 holds AC-3 (camcorders, DVDs), E-AC-3 and ALAC, so they were copied as they were, and
    # Chromium played those results silent: they are made AAC now.
    sound = Audio(codec, samples=beeps([0.2, 0.6, 1.0], 1.5))
    frames = real_frames(AUDIO_CLIP, 40, (160, 120))
    source = write_video(tmp_path / "camera.mkv", frames, container="matroska", audio=sound)
    result = tmp_path / "result.mp4"
    restyle_video(source, result, lambda batch: batch, TranscodeOptions())
    page = browser.new_page()
    try:
        heard = page.evaluate(AUDIO_DECODED, base64.b64encode(result.read_bytes()).decode())
    finally:
        page.close()
    assert heard > 0
