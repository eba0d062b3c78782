"""The page's "Teach a new action" panel, driven in a real browser.

Labels, clips, progress, the cross-validated accuracy, then classifying with the new model.
"""

from __future__ import annotations

import httpx

from tests.service.web.conftest import drop_connection
from tests.utils.teach import TRAINING_SET, YOYO_TEST_CLIP

TIMEOUT_MS = 120_000


def test_the_page_teaches_a_new_action_then_classifies_with_it(browser, live_service: str) -> None:
    page = browser.new_page()
    try:
        page.goto(live_service)
        page.wait_for_selector("#model-select option", state="attached")
        assert page.is_disabled("#teach-button")
        page.fill("#teach-name", "page-taught")
        rows = page.locator(".teach-label")
        assert rows.count() == 2
        for row, (label, clips) in zip(rows.all(), TRAINING_SET.items(), strict=True):
            row.locator(".label-name").fill(label)
            row.locator(".label-files").set_input_files([str(clip) for clip in clips[:2]])
            assert row.locator(".clip-count").text_content() == "2 clips (need 3)"
            assert page.is_disabled("#teach-button")
            row.locator(".label-files").set_input_files([str(clips[2])])
            assert row.locator(".clip-count").text_content() == "3 clips"
        with page.expect_response(lambda r: r.url.endswith("/classifiers")):
            page.click("#teach-button")
        # The connection drops for two seconds while the job runs: the page keeps following it.
        drop_connection(page, "teach-progress-text", seconds=2)
        page.wait_for_selector("#teach-result:not([hidden])", timeout=TIMEOUT_MS)
        result = page.text_content("#teach-result")
        assert result.startswith("“page-taught” knows punch, yoyo. Cross-validated accuracy: ")
        assert "(3 folds over 6 clips)" in result
        assert page.text_content("#teach-progress-text") == "Taught!"
        assert page.is_hidden("#error")
        assert page.input_value("#model-select") == "page-taught"

        page.set_input_files("#file-input", str(YOYO_TEST_CLIP))
        page.click("#classify-button")
        page.wait_for_selector("#predictions li, #error:not([hidden])", timeout=TIMEOUT_MS)
        assert page.is_hidden("#error"), page.text_content("#error")
        labels = page.locator("#predictions li strong").all_text_contents()
        assert sorted(labels) == ["punch", "yoyo"] and labels[0] == "yoyo"
    finally:
        page.close()
        httpx.delete(f"{live_service}/classifiers/page-taught", timeout=10)


def test_a_reload_while_teaching_finds_the_job_again(browser, live_service: str) -> None:
    page = browser.new_page()
    try:
        page.goto(live_service)
        page.wait_for_selector("#model-select option", state="attached")
        page.fill("#teach-name", "reloaded")
        for row, (label, clips) in zip(
            page.locator(".teach-label").all(), TRAINING_SET.items(), strict=True
        ):
            row.locator(".label-name").fill(label)
            row.locator(".label-files").set_input_files([str(clip) for clip in clips])
        with page.expect_response(lambda r: r.url.endswith("/classifiers")):
            page.click("#teach-button")

        page.reload()  # the job runs on: the page follows it again and shows what it learnt
        page.wait_for_selector("#teach-result:not([hidden])", timeout=TIMEOUT_MS)
        assert page.text_content("#teach-result").startswith("“reloaded” knows punch, yoyo.")
        assert page.is_hidden("#teach-cancel-button") and page.is_hidden("#error")

        page.reload()  # ended: nothing to pick up any more
        page.wait_for_selector("#model-select option", state="attached")
        assert page.is_hidden("#teach-progress-box") and page.is_hidden("#teach-result")
    finally:
        page.close()
        httpx.delete(f"{live_service}/classifiers/reloaded", timeout=10)


def test_the_teach_script_writes_no_markup(live_service: str) -> None:
    script = httpx.get(f"{live_service}/static/teach.js", timeout=10)
    assert script.status_code == 200 and "innerHTML" not in script.text
