"""The open-set rule as the service applies it: distance threshold and top-1 probability floor."""

from __future__ import annotations

import pytest

from service.contract.manifest import load_manifest
from service.inference.classifier import classify, load_classifier
from service.video.decode import DecodeLimits
from tests.utils.data import REPO_ROOT, YOYO_CLIP

MODELS = REPO_ROOT / "exported_models"


@pytest.fixture(scope="module")
def default_entry():
    manifest = load_manifest(MODELS)
    (entry,) = [c for c in manifest.classifiers if c.name == manifest.default_classifier]
    return entry


def test_the_default_model_ships_both_thresholds(default_entry) -> None:
    open_set = default_entry.open_set
    assert open_set is not None and open_set.threshold > 0
    assert open_set.min_top1_probability is not None
    assert 1 / len(default_entry.labels) < open_set.min_top1_probability < 1


def test_a_known_clip_is_confident_under_the_shipped_rule(default_entry) -> None:
    classifier = load_classifier(MODELS, default_entry, 1)
    answer = classify(YOYO_CLIP, classifier, 3, DecodeLimits())
    assert answer.confident and answer.top_label == "YoYo"


def test_the_probability_floor_alone_can_make_a_clip_unknown(default_entry) -> None:
    # A floor of 1.0 no clip reaches; a huge distance threshold that every clip passes.
    classifier = load_classifier(
        MODELS, default_entry, 1, threshold_override=10.0, min_top1_override=1.0
    )
    answer = classify(YOYO_CLIP, classifier, 3, DecodeLimits())
    assert not answer.confident and answer.top_label == "unknown"
    assert answer.predictions[0].label == "YoYo"  # the ranking itself is untouched


def test_a_floor_of_zero_turns_the_probability_check_off(default_entry) -> None:
    classifier = load_classifier(
        MODELS, default_entry, 1, threshold_override=10.0, min_top1_override=0.0
    )
    assert classify(YOYO_CLIP, classifier, 3, DecodeLimits()).confident
