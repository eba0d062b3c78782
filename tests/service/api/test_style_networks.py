"""GET /models/styles/{name}/network: the ONNX bytes the page's Live mode runs in the browser."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests.utils.styles import TEST_STYLE

IMMUTABLE = "public, max-age=31536000, immutable"


def _entry(models_dir: Path, name: str) -> dict:
    manifest = json.loads((models_dir / "manifest.json").read_text())
    return next(style for style in manifest["styles"] if style["name"] == name)


def test_models_lists_each_styles_network(style_models_dir: Path, job_stack) -> None:
    entry = _entry(style_models_dir, TEST_STYLE)
    styles = {s["name"]: s for s in job_stack.client.get("/models").json()["styles"]}
    assert styles[TEST_STYLE]["network"] == {
        "url": f"/models/styles/{TEST_STYLE}/network?sha256={entry['sha256']}",
        "sha256": entry["sha256"],
        "input_name": "image",
        "output_name": "stylized",
        "size_multiple": 4,
    }


def test_the_network_is_immutable_at_its_checksum_url(style_models_dir: Path, job_stack) -> None:
    client = job_stack.client
    entry = _entry(style_models_dir, TEST_STYLE)
    response = client.get(
        f"/models/styles/{TEST_STYLE}/network", params={"sha256": entry["sha256"]}
    )

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["cache-control"] == IMMUTABLE
    assert response.headers["etag"] == f'"{entry["sha256"]}"'
    assert response.content == (style_models_dir / entry["file"]).read_bytes()
    assert hashlib.sha256(response.content).hexdigest() == entry["sha256"]


def test_without_the_checksum_the_network_must_be_revalidated(
    style_models_dir: Path, job_stack
) -> None:
    entry = _entry(style_models_dir, TEST_STYLE)
    for params in ({}, {"sha256": "0" * 64}):
        response = job_stack.client.get(f"/models/styles/{TEST_STYLE}/network", params=params)
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["etag"] == f'"{entry["sha256"]}"'


def test_a_matching_if_none_match_gets_304(style_models_dir: Path, job_stack) -> None:
    client = job_stack.client
    digest = _entry(style_models_dir, TEST_STYLE)["sha256"]
    url = f"/models/styles/{TEST_STYLE}/network?sha256={digest}"
    for tag in (f'"{digest}"', f'W/"{digest}"', f'"other", "{digest}"', "*"):
        response = client.get(url, headers={"If-None-Match": tag})
        assert response.status_code == 304, tag
        assert response.content == b""
        assert response.headers["etag"] == f'"{digest}"'
        assert response.headers["cache-control"] == IMMUTABLE
    stale = client.get(url, headers={"If-None-Match": '"not-this-one"'})
    assert stale.status_code == 200
    assert len(stale.content) > 0


def test_an_unknown_style_has_no_network(job_stack) -> None:
    response = job_stack.client.get("/models/styles/nope/network")
    assert response.status_code == 404
    assert response.json()["code"] == "style_not_found"
    assert response.json()["detail"].startswith("no style named 'nope'; known styles: ")
    assert TEST_STYLE in response.json()["detail"]
