"""The page on a server that needs API keys: it says so, takes a key, keeps it, and works."""

from __future__ import annotations

from tests.service.web.conftest import PAGE_API_KEY
from tests.utils.data import AUDIO_CLIP
from tests.utils.styles import TEST_STYLE

TIMEOUT_MS = 120_000
STYLE_INPUT = f'input[name="style"][value="{TEST_STYLE}"]'


def test_the_page_asks_for_a_key_then_stylises_with_it(browser, keyed_live_service: str) -> None:
    page = browser.new_page()
    try:
        page.goto(keyed_live_service)
        page.wait_for_selector("#error:not([hidden])", timeout=30_000)
        assert page.text_content("#error") == (
            "The styles could not be loaded: "
            "this server needs an API key: send it in the X-API-Key header"
        )

        page.fill("#api-key", PAGE_API_KEY)
        page.dispatch_event("#api-key", "change")
        page.wait_for_selector(STYLE_INPUT, state="attached", timeout=30_000)
        assert page.is_hidden("#error")
        # Thumbnails come through fetch with the key header, shown from blobs.
        thumbnail = page.locator(".style-card img").first
        page.wait_for_function("img => img.naturalWidth > 0", arg=thumbnail.element_handle())
        assert thumbnail.get_attribute("src").startswith("blob:")

        # The key stays in this browser: a reload needs no typing.
        page.reload()
        page.wait_for_selector(STYLE_INPUT, state="attached", timeout=30_000)
        assert page.input_value("#api-key") == PAGE_API_KEY

        page.set_input_files("#file-input", str(AUDIO_CLIP))
        page.locator(".style-card", has_text="16 channels").click()
        page.click("#stylize-button")
        page.wait_for_selector("#result-box:not([hidden])", timeout=TIMEOUT_MS)
        page.wait_for_function(
            "() => { const v = document.getElementById('result-video');"
            " return v.readyState >= 2 && v.duration > 6; }",
            timeout=30_000,
        )
        assert page.get_attribute("#result-video", "src").startswith("blob:")
        # A blob has no server-given name: the page names the download as the server would.
        with page.expect_download(timeout=30_000) as download:
            page.click("#download-link")
        assert download.value.suggested_filename == f"{AUDIO_CLIP.stem}.{TEST_STYLE}.mp4"
        assert page.is_hidden("#error")
    finally:
        page.close()
