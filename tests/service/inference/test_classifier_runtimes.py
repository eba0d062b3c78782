"""Classifiers on OpenVINO (`ACTIONSTYLE_OPENVINO_CLASSIFIERS`): the answers onnxruntime gives.

OpenVINO computes in bfloat16 on CPUs that have it, so scores move by a few hundredths; what a
user reads (the label, whether it is confident) must not. The default model is checked on a clip
its Lite0 branch answers alone and on one that goes on to I3D, so both sides of its cascade run.
"""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.contract.manifest import ManifestError, load_manifest
from service.inference.classifier import OpenVinoSession, classify, load_classifier
from service.inference.registry import load_registry
from service.settings import Settings
from service.video.decode import DecodeLimits
from tests.service.conftest import SettingsFactory
from tests.utils.data import UCF101, YOYO_CLIP

DUNK_CLIP = UCF101 / "BasketballDunk" / "v_BasketballDunk_g08_c01.mp4"  # Lite0 alone is sure of it


@pytest.fixture(scope="module")
def default_both_ways(models_dir: Path):
    manifest = load_manifest(models_dir)
    entry = next(c for c in manifest.classifiers if c.name == manifest.default_classifier)
    return tuple(
        load_classifier(models_dir, entry, intra_op_threads=2, openvino=openvino)
        for openvino in (False, True)
    )


@pytest.mark.parametrize("clip", [YOYO_CLIP, DUNK_CLIP], ids=["through-i3d", "lite0-alone"])
def test_the_default_answers_on_openvino_as_on_onnxruntime(default_both_ways, clip: Path) -> None:
    on_onnxruntime, on_openvino = default_both_ways
    assert isinstance(on_onnxruntime.session, ort.InferenceSession)
    assert isinstance(on_openvino.session, OpenVinoSession)
    expected = classify(clip, on_onnxruntime, 9, DecodeLimits())
    answer = classify(clip, on_openvino, 9, DecodeLimits())
    assert (answer.top_label, answer.confident) == (expected.top_label, expected.confident)
    assert answer.top_label == clip.parent.name
    scores = {p.label: p.score for p in expected.predictions}
    for prediction in answer.predictions:
        assert prediction.score == pytest.approx(scores[prediction.label], abs=0.03)
    assert answer.ood_distance == pytest.approx(expected.ood_distance, abs=0.05)


def test_only_the_named_classifiers_move_to_openvino(models_dir: Path) -> None:
    registry = load_registry(models_dir, 1, openvino_classifiers={"csn"})
    for name in registry.classifier_names:
        on_openvino = isinstance(registry.classifier(name).session, OpenVinoSession)
        assert on_openvino == (name == "csn"), name


def test_an_unknown_name_stops_the_service_saying_which(models_dir: Path) -> None:
    with pytest.raises(ManifestError, match="csnn.*its classifiers: .*csn"):
        load_registry(models_dir, 1, openvino_classifiers={"csnn"})


def test_the_setting_reads_names_or_all() -> None:
    assert Settings(openvino_classifiers=" csn, r2plus1d ,").openvino_classifier_names() == {
        "csn",
        "r2plus1d",
    }
    assert Settings().openvino_classifier_names() == frozenset()


def test_the_api_serves_the_default_from_openvino_when_asked(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(openvino_classifiers="all", ort_intra_op_threads=0)
    with TestClient(create_app(settings)) as client:
        default = client.app.state.models.classifier(None)
        assert isinstance(default.session, OpenVinoSession)
        response = client.post(
            "/classify", files={"file": ("clip.avi", YOYO_CLIP.read_bytes(), "video/x-msvideo")}
        )
    assert response.status_code == 200, response.text
    assert response.json()["top_label"] == "YoYo"
