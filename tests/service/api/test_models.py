"""GET /models lists the manifest's classifiers with their metrics."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from fastapi.testclient import TestClient

from tests.utils.styles import TEST_STYLE


def test_models_lists_the_manifest(client: TestClient, models_dir: Path) -> None:
    manifest = json.loads((models_dir / "manifest.json").read_text())
    response = client.get("/models")

    assert response.status_code == 200
    body = response.json()
    assert body["default_classifier"] == manifest["default_classifier"]
    assert [s["name"] for s in body["styles"]] == [s["name"] for s in manifest.get("styles", [])]
    assert body["custom_style"] == ("arbitrary_style" in manifest)
    assert [c["name"] for c in body["classifiers"]] == [c["name"] for c in manifest["classifiers"]]
    for listed, exported in zip(body["classifiers"], manifest["classifiers"], strict=True):
        assert listed["labels"] == exported["labels"]
        assert listed["sha256"] == exported["sha256"]
        assert listed["input"]["frames"] == exported["input"]["frames"]
        # Metrics pass through whole, including any the service does not know by name.
        assert listed["metrics"] == exported["metrics"]


def test_styles_are_listed_with_thumbnails(style_models_dir: Path, job_stack) -> None:
    client = job_stack.client
    manifest = json.loads((style_models_dir / "manifest.json").read_text())
    body = client.get("/models").json()
    assert body["custom_style"] is True
    listed = {s["name"]: s for s in body["styles"]}
    assert list(listed) == [s["name"] for s in manifest["styles"]]
    style = listed[TEST_STYLE]
    assert style["display_name"] == "Test convolutions (16 channels)"
    assert style["metrics"] == {"note": "random weights, for tests"}
    assert style["thumbnail_url"] == f"/models/styles/{TEST_STYLE}/thumbnail"

    picture = client.get(style["thumbnail_url"])
    assert picture.status_code == 200
    assert picture.headers["content-type"] == "image/jpeg"
    assert picture.content[:3] == b"\xff\xd8\xff"
    drawn = cv2.imdecode(np.frombuffer(picture.content, np.uint8), cv2.IMREAD_COLOR)
    assert drawn.shape == (120, 160, 3) and drawn.std() > 5  # a painted scene, not a flat fill
    assert client.get(style["thumbnail_url"]).content == picture.content  # drawn the same way
    missing = client.get("/models/styles/nope/thumbnail")
    assert missing.status_code == 404
    assert missing.json() == {
        "detail": f"unknown style 'nope'; known styles: {', '.join(listed)}",
        "code": "thumbnail_not_found",
    }
