"""The manifest is validated and every model file verified before the service starts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.contract.manifest import ManifestError, load_manifest
from tests.service.conftest import SettingsFactory


@pytest.fixture
def models_copy(models_dir: Path, tmp_path: Path) -> Path:
    """A writable copy of the exported models."""
    return Path(shutil.copytree(models_dir, tmp_path / "models"))


def edit_manifest(folder: Path, edit) -> None:
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))


def test_checksum_mismatch_refuses_to_start(
    make_settings: SettingsFactory, models_copy: Path
) -> None:
    entry = json.loads((models_copy / "manifest.json").read_text())["classifiers"][0]
    onnx = models_copy / entry["file"]
    onnx.write_bytes(onnx.read_bytes() + b"\0")

    app = create_app(make_settings(models_dir=models_copy))
    with pytest.raises(ManifestError) as refused, TestClient(app):
        pass
    message = str(refused.value)
    assert message.startswith(f"model '{entry['name']}': {onnx} has sha256 ")
    assert message.endswith(
        f"but the manifest says {entry['sha256']}; the file is corrupt or was replaced "
        "without re-exporting the manifest"
    )


def test_missing_model_file_refuses_to_start(
    make_settings: SettingsFactory, models_copy: Path
) -> None:
    entry = json.loads((models_copy / "manifest.json").read_text())["classifiers"][0]
    (models_copy / entry["file"]).unlink()
    app = create_app(make_settings(models_dir=models_copy))
    refusal = "named in the manifest does not exist"
    with pytest.raises(ManifestError, match=refusal), TestClient(app):
        pass


def test_labels_that_do_not_match_the_graph_refuse_to_start(
    make_settings: SettingsFactory, models_copy: Path
) -> None:
    edit_manifest(models_copy, lambda m: m["classifiers"][0]["labels"].append("Juggling"))
    app = create_app(make_settings(models_dir=models_copy))
    refusal = r"outputs \d+ scores, but the manifest lists \d+"
    with pytest.raises(ManifestError, match=refusal), TestClient(app):
        pass


@pytest.mark.parametrize(
    ("edit", "complaint"),
    [
        (lambda m: m.update(schema_version=2), "schema_version: Input should be 1"),
        (lambda m: m.update(default_classifier="nope"), "default_classifier 'nope' is not in"),
        (
            lambda m: m["classifiers"][0].update(file="../elsewhere.onnx"),
            "classifiers.0.file: String should match pattern",
        ),
        (
            lambda m: m["classifiers"][0]["input"].update(layout="NTHWC"),
            "classifiers.0.input.layout: Input should be 'NCTHW'",
        ),
        (lambda m: m["classifiers"][0].pop("labels"), "classifiers.0.labels: Field required"),
    ],
    ids=["schema version", "default", "file outside", "layout", "labels"],
)
def test_invalid_manifest_is_refused(models_copy: Path, edit, complaint: str) -> None:
    edit_manifest(models_copy, edit)
    with pytest.raises(ManifestError, match="does not match the manifest schema") as refused:
        load_manifest(models_copy)
    assert complaint in str(refused.value)


def test_manifest_that_is_not_json(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestError, match="manifest.json is not valid JSON"):
        load_manifest(tmp_path)
