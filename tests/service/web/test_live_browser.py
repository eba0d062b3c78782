"""The Live mode in a real browser: Debian's chromium with its fake camera paints the camera with
onnxruntime-web, switches styles, records WebM and sends the recording for a full render."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import pytest

from service.api.web import WEB_DIR
from tests.service.web.conftest import CHROMIUM, CHROMIUM_ARGS, _missing
from tests.utils.styles import SLOW_STYLE, TEST_STYLE

TIMEOUT_MS = 120_000
# Chromium's fake camera (a moving test pattern) and no permission prompt.
CAMERA_ARGS = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
# The painted canvas and the raw camera frame drawn at the same size: (painted, raw) as RGB lists,
# every 7th pixel, enough to compare pictures.
PICTURES = """() => {
  const canvas = document.getElementById("live-canvas");
  const grab = (source) => {
    const copy = document.createElement("canvas");
    copy.width = canvas.width;
    copy.height = canvas.height;
    const context = copy.getContext("2d");
    context.drawImage(source, 0, 0, copy.width, copy.height);
    const data = context.getImageData(0, 0, copy.width, copy.height).data;
    return Array.from(data.filter((_, i) => i % 4 !== 3 && Math.floor(i / 4) % 7 === 0));
  };
  return [grab(canvas), grab(document.getElementById("live-raw"))];
}"""
FRAMES = "() => Number(document.getElementById('live-canvas').dataset.frames || 0)"


def _difference(a: list[int], b: list[int]) -> float:
    """Mean absolute difference of two pictures' channel values (0..255)."""
    assert len(a) == len(b) and a
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)


def _painted(page) -> list[int]:
    return page.evaluate(PICTURES)[0]


def _wait_frames(page, more: int) -> None:
    """Until `more` frames beyond the current count have been painted."""
    target = page.evaluate(FRAMES) + more
    page.wait_for_function(f"() => ({FRAMES})() >= {target}", timeout=TIMEOUT_MS)


@pytest.fixture(scope="module")
def camera_browser() -> Iterator:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed")
    if not os.access(CHROMIUM, os.X_OK):
        _missing(f"no chromium at {CHROMIUM}")
    if not (WEB_DIR / "vendor" / "ort" / "ort.wasm.min.mjs").is_file():
        _missing("no onnxruntime-web: run scripts/fetch_web_vendor.py (make test does)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=[*CHROMIUM_ARGS, *CAMERA_ARGS]
        )
        try:
            yield chromium
        finally:
            chromium.close()


def test_live_paints_the_camera_switches_records_and_renders(
    camera_browser, live_service: str, tmp_path: Path
) -> None:
    styles = [s["name"] for s in httpx.get(f"{live_service}/models").json()["styles"]]
    # A real exported style when the repo has one; the wider test network otherwise.
    other = next((name for name in styles if name not in {TEST_STYLE, SLOW_STYLE}), SLOW_STYLE)
    context = camera_browser.new_context(accept_downloads=True)
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    try:
        page.goto(live_service)
        assert page.evaluate("window.crossOriginIsolated") is True
        page.wait_for_selector("#live-start:not([disabled])")
        page.select_option("#live-style", TEST_STYLE)
        page.click("#live-start")
        _wait_frames(page, 5)
        status = page.text_content("#live-status-text")
        assert status == "Painting in Test convolutions (16 channels)."
        # Headless chromium here has no WebGPU: threaded WebAssembly, as the page is isolated.
        backend = page.text_content("#live-backend")
        assert backend.startswith(("WebAssembly SIMD", "WebGPU")), backend
        assert "not cross-origin isolated" not in backend
        # "auto" detail: the network runs at the canvas's size or lower, in multiples of 4.
        detail = re.fullmatch(r"network at (\d+) × (\d+)", page.text_content("#live-detail-text"))
        assert detail and int(detail[1]) <= 320 and int(detail[1]) % 4 == 0
        assert float(page.get_attribute("#live-fps", "data-fps")) > 0
        readout = re.fullmatch(r"(\d+\.\d) fps", page.text_content("#live-fps"))
        assert readout and float(readout[1]) > 0

        # The painted picture moves with the camera (the fake camera's pattern turns; after 10
        # frames the smoothing's memory of older frames is below 0.3^10), and it is not the
        # camera's picture.
        _wait_frames(page, 10)
        first, raw = page.evaluate(PICTURES)
        assert _difference(first, raw) > 20
        _wait_frames(page, 10)
        assert _difference(_painted(page), first) > 0.1

        page.select_option("#live-style", other)
        page.wait_for_function(
            "() => { const text = document.getElementById('live-status-text').textContent;"
            " return text.startsWith('Painting') && !text.includes('Test conv'); }",
            timeout=TIMEOUT_MS,
        )
        _wait_frames(page, 3)
        assert _difference(_painted(page), first) > 20

        # Mirror: the camera is shown flipped and the painting follows it.
        before = _painted(page)
        page.check("#live-mirror")
        assert "mirrored" in page.get_attribute("#live-raw", "class")
        _wait_frames(page, 5)
        assert _difference(_painted(page), before) > 10  # 41 when measured; motion alone < 1
        page.uncheck("#live-mirror")

        page.click("#live-record")
        assert page.text_content("#live-record") == "Stop recording"
        _wait_frames(page, 10)
        page.click("#live-record")
        page.wait_for_selector("#live-download:not([hidden])", timeout=TIMEOUT_MS)
        with page.expect_download() as downloading:
            page.click("#live-download")
        recording = tmp_path / "painted.webm"
        downloading.value.save_as(recording)
        assert recording.read_bytes()[:4] == b"\x1a\x45\xdf\xa3"  # EBML: a WebM file
        with av.open(str(recording)) as container:
            frames = list(container.decode(video=0))
        assert frames and frames[0].width == 320 and frames[0].height == 240

        # The raw recording goes to POST /stylize as an ordinary job; app.js shows the result.
        page.wait_for_selector("#live-render:not([hidden])", timeout=TIMEOUT_MS)
        with page.expect_response(lambda r: r.url.endswith("/stylize")) as submitted:
            page.click("#live-render")
        assert submitted.value.status == 202
        job_id = submitted.value.json()["job_id"]
        page.wait_for_selector("#result-box:not([hidden])", timeout=TIMEOUT_MS)
        job = httpx.get(f"{live_service}/jobs/{job_id}").json()
        assert job["state"] == "succeeded"

        # Stop releases the camera: its tracks end.
        page.evaluate("window.tracks = document.getElementById('live-raw').srcObject.getTracks()")
        page.click("#live-stop")
        assert page.evaluate("window.tracks.every((t) => t.readyState === 'ended')") is True
        assert page.evaluate("document.getElementById('live-raw').srcObject") is None
        assert page.text_content("#live-fps") == "stopped"
        assert page.is_enabled("#live-start")
    except Exception:
        print("\n".join(console))
        raise
    finally:
        context.close()
