"""The web page in a real browser: upload, classify, stylise, play and download."""

from __future__ import annotations

from pathlib import Path

import av
import httpx

from tests.service.web.conftest import drop_connection
from tests.utils.data import AUDIO_CLIP, CLIPS
from tests.utils.jobs import submit_job
from tests.utils.media import image_bytes
from tests.utils.styles import TEST_STYLE

TIMEOUT_MS = 120_000
THUMBNAIL_LOADED = """() => {
  const img = document.querySelector(".style-card img");
  return img !== null && img.complete && img.naturalWidth > 0;
}"""
# The preview picture's pixels (RGB, every 4th byte skipped), to see that it changed.
PREVIEW_PIXELS = """async () => {
  const img = document.getElementById("preview-image");
  await img.decode();  // its text is set with its src: the picture may not be decoded yet
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const context = canvas.getContext("2d");
  context.drawImage(img, 0, 0);
  const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
  return Array.from(data.filter((_, i) => i % 4 !== 3));
}"""
# An H.264 clip, which a browser can decode to grab a frame (it cannot decode the AVI above).
H264_CLIP = CLIPS / "kinetics_demo.mp4"
# Drops a file made of text on the drop zone, as a person dragging it from their desktop would.
DROP = """([name, text]) => {
  const files = new DataTransfer();
  files.items.add(new File([text], name));
  const drop = new DragEvent("drop", {dataTransfer: files, bubbles: true, cancelable: true});
  document.getElementById("drop-zone").dispatchEvent(drop);
}"""


def open_page(page, base_url: str) -> None:
    """Load the page and wait until its styles are listed."""
    page.goto(base_url)
    page.wait_for_selector(f'input[name="style"][value="{TEST_STYLE}"]', state="attached")


def ready_to_stylize(page, base_url: str) -> None:
    """Load the page, choose the clip with sound and the test style."""
    open_page(page, base_url)
    page.set_input_files("#file-input", str(AUDIO_CLIP))
    page.locator(".style-card", has_text="16 channels").click()


def test_the_page_classifies_stylises_plays_and_downloads(
    browser, live_service: str, tmp_path: Path
) -> None:
    page = browser.new_page()
    try:
        open_page(page, live_service)
        # Thumbnails are fetched after the cards appear: wait for the first to have loaded.
        page.wait_for_function(THUMBNAIL_LOADED, timeout=TIMEOUT_MS)
        page.set_input_files("#file-input", str(AUDIO_CLIP))
        assert AUDIO_CLIP.name in page.text_content("#file-name")

        page.click("#classify-button")
        page.wait_for_selector("#predictions li", timeout=TIMEOUT_MS)
        labels = page.locator("#predictions li strong").all_text_contents()
        scores = page.locator("#predictions li .score").all_text_contents()
        assert len(labels) == 3 and "ApplyEyeMakeup" in labels
        assert all(score.endswith(" %") for score in scores)

        page.locator(".style-card", has_text="16 channels").click()
        # The strength slider, from the keyboard: 100 % down to 60 % in steps of 5.
        page.focus("#strength-input")
        for _ in range(8):
            page.keyboard.press("ArrowLeft")
        assert page.text_content("#strength-value") == "60 %"
        with page.expect_response(lambda r: r.url.endswith("/stylize")) as submitted:
            page.click("#stylize-button")
        job_id = submitted.value.json()["job_id"]
        # The progress bar moves while the job runs, then the result plays inline.
        page.wait_for_function(
            "() => { const p = document.getElementById('progress');"
            " return p.value > 0 && p.value < 1; }",
            timeout=TIMEOUT_MS,
            polling=20,
        )
        page.wait_for_selector("#result-box:not([hidden])", timeout=TIMEOUT_MS)
        assert page.text_content("#progress-text") == "Style transfer complete!"
        page.wait_for_function(
            "() => { const v = document.getElementById('result-video');"
            " return v.readyState >= 2 && v.duration > 6; }",
            timeout=30_000,
        )
        duration = page.evaluate("document.getElementById('result-video').duration")
        assert abs(duration - 164 / 25) < 0.2
        assert page.is_hidden("#error")
        job = httpx.get(f"{live_service}/jobs/{job_id}", timeout=10).json()
        assert (job["state"], job["strength"]) == ("succeeded", 0.6)

        with page.expect_download(timeout=30_000) as download_info:
            page.click("#download-link")
        assert download_info.value.suggested_filename == f"{AUDIO_CLIP.stem}.{TEST_STYLE}.mp4"
        downloaded = tmp_path / "download.mp4"
        download_info.value.save_as(downloaded)
        with av.open(str(downloaded)) as output:
            assert output.streams.video[0].codec_context.name == "h264"
            assert len(output.streams.audio) == 1

        # A video the browser can decode: one frame of it previews the style at the strength.
        page.set_input_files("#file-input", str(H264_CLIP))
        page.wait_for_selector("#preview-image:not([hidden])", timeout=TIMEOUT_MS)
        page.wait_for_function(
            "() => document.getElementById('preview-text').textContent"
            " === 'One frame of your video at 60 % strength.'",
            timeout=TIMEOUT_MS,
        )
        # The frame as a player shows it: 340x256 pixels that are not square, 427x256 on screen.
        size = "(({naturalWidth, naturalHeight}) => [naturalWidth, naturalHeight])"
        page.evaluate("() => document.getElementById('preview-image').decode()")
        assert page.eval_on_selector("#preview-image", size) == [427, 256]
        at_60 = page.evaluate(PREVIEW_PIXELS)
        page.focus("#strength-input")
        for _ in range(8):  # 60 % down to 20 %, quickly: only the last one is previewed
            page.keyboard.press("ArrowLeft")
        page.wait_for_function(
            "() => document.getElementById('preview-text').textContent"
            " === 'One frame of your video at 20 % strength.'",
            timeout=TIMEOUT_MS,
        )
        at_20 = page.evaluate(PREVIEW_PIXELS)
        assert len(at_20) == len(at_60) == 427 * 256 * 3
        change = sum(abs(a - b) for a, b in zip(at_20, at_60, strict=True)) / len(at_20)
        assert change > 10, change  # 40 % of the style gone: the picture moved towards the video
        assert page.is_hidden("#error")
    finally:
        page.close()


def test_a_video_the_browser_cannot_decode_is_previewed_on_a_frame_the_server_draws(
    browser, live_service: str
) -> None:
    # Chromium plays no AVI: the page used to say "No preview" for the study's own clips.
    page = browser.new_page()
    try:
        open_page(page, live_service)
        page.locator(".style-card", has_text="16 channels").click()
        with page.expect_response(lambda r: r.url.endswith("/stylize/preview/frame")) as drawn:
            page.set_input_files("#file-input", str(AUDIO_CLIP))  # XviD AVI
        assert drawn.value.status == 200
        page.wait_for_function(
            "() => document.getElementById('preview-text').textContent"
            " === 'One frame of your video at 100 % strength.'",
            timeout=TIMEOUT_MS,
        )
        page.evaluate("() => document.getElementById('preview-image').decode()")
        size = "(({naturalWidth, naturalHeight}) => [naturalWidth, naturalHeight])"
        assert page.eval_on_selector("#preview-image", size) == [320, 240]
        assert page.is_hidden("#error")
    finally:
        page.close()


def test_an_upload_on_a_slow_line_shows_how_far_it_has_got(browser, live_service: str) -> None:
    page = browser.new_page()
    try:
        open_page(page, live_service)
        network = page.context.new_cdp_session(page)
        network.send("Network.enable")
        # 60 KB/s up: the 288 KB clip takes about 5 s, as 200 MB would take minutes at home.
        network.send(
            "Network.emulateNetworkConditions",
            {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 60_000},
        )
        page.set_input_files("#file-input", str(AUDIO_CLIP))
        page.locator(".style-card", has_text="16 channels").click()
        with page.expect_response(lambda r: r.url.endswith("/stylize"), timeout=TIMEOUT_MS):
            page.click("#stylize-button")
            page.wait_for_function(
                "() => /^Uploading… ([1-9]|[1-9][0-9]) % of 288 KB$/.test("
                "document.getElementById('progress-text').textContent)",
                timeout=TIMEOUT_MS,
                polling=20,
            )
        page.click("#cancel-button")
        page.wait_for_function(
            "() => document.getElementById('progress-text').textContent === 'Cancelled.'",
            timeout=TIMEOUT_MS,
        )
    finally:
        page.close()


# Every element marked hidden that a browser nevertheless lays out (a CSS display rule wins over
# the attribute): the Cancel, Stop and Render buttons and the live stage were all on show.
SHOWN_THOUGH_HIDDEN = """() => [...document.querySelectorAll("[hidden]")]
  .filter((element) => element.getClientRects().length > 0).map((element) => element.id)"""


def test_a_fresh_page_loads_cleanly_and_shows_only_what_it_should(
    browser, live_service: str
) -> None:
    page = browser.new_page()
    failed: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    try:
        open_page(page, live_service)
        page.wait_for_function(THUMBNAIL_LOADED, timeout=TIMEOUT_MS)
        assert failed == []
        # Its own icon, so browsers do not ask for a /favicon.ico that is not there (404).
        icon = httpx.get(page.eval_on_selector('link[rel="icon"]', "link => link.href"))
        assert (icon.status_code, icon.headers["content-type"]) == (200, "image/svg+xml")
        assert page.evaluate(SHOWN_THOUGH_HIDDEN) == []
        assert page.is_hidden("#cancel-button") and page.is_hidden("#live-render")
    finally:
        page.close()


def test_on_a_phone_the_page_fits_the_screen(browser, live_service: str) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        open_page(page, live_service)
        page.wait_for_function("() => document.getElementById('model-select').options.length > 0")
        # Nothing (the model names are long) makes a phone scroll sideways.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
    finally:
        page.close()


# What Chromium gives a page opened at http://<a LAN address> (a phone on the home network): no
# secure context, so no navigator.mediaDevices.
INSECURE_ORIGIN = """
Object.defineProperty(window, "isSecureContext", { get: () => false });
Object.defineProperty(Navigator.prototype, "mediaDevices", { get: () => undefined });
"""


def test_live_mode_on_a_plain_http_address_says_the_camera_needs_https(
    browser, live_service: str
) -> None:
    page = browser.new_page()
    try:
        page.add_init_script(INSECURE_ORIGIN)
        open_page(page, live_service)
        assert page.text_content("#live-status-text") == (
            "Live needs the page over https (or on localhost): browsers keep the camera from "
            "other pages."
        )
        assert page.is_disabled("#live-start")
        assert page.is_hidden("#error")  # the rest of the page works as usual
    finally:
        page.close()


def test_a_reload_finds_the_job_again_running_and_finished(browser, live_service: str) -> None:
    page = browser.new_page()
    try:
        ready_to_stylize(page, live_service)
        with page.expect_response(lambda r: r.url.endswith("/stylize")) as submitted:
            page.click("#stylize-button")
        job_id = submitted.value.json()["job_id"]

        page.reload()  # the job is queued or running: the page follows it again
        page.wait_for_selector("#result-box:not([hidden])", timeout=TIMEOUT_MS)
        assert page.text_content("#progress-text") == "Style transfer complete!"
        assert page.get_attribute("#download-link", "href") == f"/jobs/{job_id}/result"

        page.reload()  # finished: its result is still there
        page.wait_for_selector("#result-box:not([hidden])", timeout=TIMEOUT_MS)
        assert page.get_attribute("#download-link", "href") == f"/jobs/{job_id}/result"
        assert page.is_hidden("#cancel-button") and page.is_hidden("#error")
    finally:
        page.close()


def test_a_job_is_followed_through_a_lost_connection(browser, live_service: str) -> None:
    page = browser.new_page()
    try:
        ready_to_stylize(page, live_service)
        with page.expect_response(lambda r: r.url.endswith("/stylize")):
            page.click("#stylize-button")
        drop_connection(page, "progress-text", seconds=3)  # the phone loses its signal
        page.wait_for_selector("#result-box:not([hidden])", timeout=TIMEOUT_MS)
        assert page.text_content("#progress-text") == "Style transfer complete!"
        assert page.is_hidden("#error")
    finally:
        page.close()


def test_a_waiting_job_shows_how_many_jobs_are_ahead_of_it(browser, live_service: str) -> None:
    ahead = []
    page = browser.new_page()
    try:
        ready_to_stylize(page, live_service)
        with httpx.Client(base_url=live_service, timeout=30) as api:
            # The worker takes one at a time: the page's job waits behind these.
            ahead = [submit_job(api, AUDIO_CLIP, TEST_STYLE)["job_id"] for _ in range(4)]
        page.click("#stylize-button")
        page.wait_for_function(
            "() => /^Waiting for a free worker: [1-9][0-9]* jobs? ahead of yours…$/.test("
            "document.getElementById('progress-text').textContent)",
            timeout=TIMEOUT_MS,
            polling=20,
        )
        page.click("#cancel-button")
    finally:
        page.close()
        for job_id in ahead:
            httpx.delete(f"{live_service}/jobs/{job_id}", timeout=10)


def test_the_page_says_what_is_wrong(browser, live_service: str, tmp_path: Path) -> None:
    page = browser.new_page()
    try:
        page.goto(live_service)
        picture = tmp_path / "holiday.jpg"
        picture.write_bytes(image_bytes(".jpg"))
        page.set_input_files("#file-input", str(picture))
        assert page.text_content("#error") == (
            '"holiday.jpg" is not a video we accept: '
            "choose an MP4, AVI, MOV, 3GP, MPEG, MTS, WMV, WebM or MKV file"
        )
        assert page.is_disabled("#classify-button")

        # Dropped on the drop zone: the same checks, and the name is shown as text, not markup.
        page.evaluate(DROP, ["<b>notes</b>.txt", "hello"])
        assert page.text_content("#error") == (
            '"<b>notes</b>.txt" is not a video we accept: '
            "choose an MP4, AVI, MOV, 3GP, MPEG, MTS, WMV, WebM or MKV file"
        )
        page.evaluate(DROP, ["clip.mov", "not really a movie"])
        assert page.is_hidden("#error") and page.is_enabled("#classify-button")
        assert page.text_content("#file-name") == "clip.mov (18 bytes)"
        page.evaluate(DROP, ["recording", "no extension"])  # left to the server's sniffing
        assert page.is_hidden("#error") and page.is_enabled("#classify-button")

        # A file that claims to be a video: the server's reason is shown as plain text.
        fake = tmp_path / "fake.mp4"
        fake.write_bytes(image_bytes(".png"))
        page.set_input_files("#file-input", str(fake))
        page.click("#classify-button")
        page.wait_for_selector("#error:not([hidden])")
        assert page.text_content("#error") == (
            "Classification failed: the file is a PNG image, not a video; "
            "upload an AVI, MP4, MOV, 3GP, MPEG, MTS, WMV, WebM or MKV video"
        )
    finally:
        page.close()


def test_the_page_serves_no_third_party_code(live_service: str) -> None:
    html = httpx.get(live_service, timeout=10).text
    assert "http://" not in html and "https://" not in html
    script = httpx.get(f"{live_service}/static/app.js", timeout=10)
    assert script.status_code == 200 and "innerHTML" not in script.text
