"""GET /models lists the manifest's classifiers with their metrics."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient


def test_models_lists_the_manifest(client: TestClient, models_dir: Path) -> None:
    manifest = json.loads((models_dir / "manifest.json").read_text())
    response = client.get("/models")

    assert response.status_code == 200
    body = response.json()
    assert body["default_classifier"] == manifest["default_classifier"]
    assert body["styles"] == manifest["styles"]
    assert [c["name"] for c in body["classifiers"]] == [c["name"] for c in manifest["classifiers"]]
    for listed, exported in zip(body["classifiers"], manifest["classifiers"], strict=True):
        assert listed["labels"] == exported["labels"]
        assert listed["sha256"] == exported["sha256"]
        assert listed["input"]["frames"] == exported["input"]["frames"]
        # Metrics pass through whole, including any the service does not know by name.
        assert listed["metrics"] == exported["metrics"]
