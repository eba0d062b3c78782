"""A result plays in the browser in the colours it was painted in, at any size."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest

from service.video.transcode import TranscodeOptions, restyle_video
from tests.utils.corpus import PATCH_COLOURS, colour_patches, write_video

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
    context.drawImage(video, 0, 0);
    const step = Math.floor(canvas.width / count);
    return Array.from({length: count}, (_, i) => Array.from(
        context.getImageData(i * step + step / 2, canvas.height / 2, 1, 1).data.slice(0, 3)));
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
