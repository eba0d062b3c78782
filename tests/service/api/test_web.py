"""The page and its static files are served cross-origin isolated, with module and wasm types."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from service.api.web import WEB_DIR

ISOLATION = {
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-embedder-policy": "require-corp",
    "cross-origin-resource-policy": "same-origin",
}


@pytest.mark.parametrize("path", ["/", "/static/app.js", "/static/live.js", "/static/style.css"])
def test_the_page_is_cross_origin_isolated(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert {name: response.headers.get(name) for name in ISOLATION} == ISOLATION


def test_onnxruntime_web_is_served_as_a_module_and_wasm(client: TestClient) -> None:
    if not (WEB_DIR / "vendor" / "ort" / "ort.wasm.min.mjs").is_file():
        pytest.skip("onnxruntime-web is not installed: run scripts/fetch_web_vendor.py")
    module = client.get("/static/vendor/ort/ort.wasm.min.mjs")
    assert module.status_code == 200
    assert module.headers["content-type"].startswith("text/javascript")
    assert module.headers["cross-origin-embedder-policy"] == "require-corp"
    wasm = client.head("/static/vendor/ort/ort-wasm-simd-threaded.wasm")
    assert wasm.status_code == 200
    assert wasm.headers["content-type"] == "application/wasm"


def test_a_missing_static_file_is_404(client: TestClient) -> None:
    assert client.get("/static/vendor/ort/nothing.mjs").status_code == 404
