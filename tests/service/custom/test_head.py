"""The numpy head on its own: it learns, its folds keep each clip whole, its thresholds hold."""

from __future__ import annotations

import numpy as np

from service.custom.head import clip_folds, cross_validate, fit_head, open_set_thresholds
from service.custom.models import CustomModel

DIM, FRAMES = 64, 8


def _clips(centres: np.ndarray, per_label: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Clips whose frames scatter around their label's centre: (2 views, T, D) each."""
    rng = np.random.default_rng(seed)
    clips, labels = [], []
    for label, centre in enumerate(centres):
        for _ in range(per_label):
            frames = np.abs(centre + 0.3 * rng.normal(size=(2, FRAMES, DIM)))
            clips.append(frames.astype(np.float32))
            labels.append(label)
    return clips, np.array(labels)


def test_folds_hold_each_clip_once_and_every_label_in_each_fold() -> None:
    labels = np.array([0] * 3 + [1] * 7 + [2] * 5)
    folds = clip_folds(labels)
    assert folds.max() + 1 == 3  # as many folds as the smallest label has clips
    for fold in range(3):
        assert set(labels[folds == fold]) == {0, 1, 2}


def test_it_learns_separable_actions_and_flags_a_stranger() -> None:
    centres = np.abs(np.random.default_rng(0).normal(size=(3, DIM))) * 2
    clips, labels = _clips(centres, per_label=5, seed=1)
    evaluation = cross_validate(clips, labels, 3)
    assert evaluation.accuracy == 1.0 and evaluation.folds == 5
    head = fit_head(clips, labels, 3)
    threshold, min_top1 = open_set_thresholds(clips, labels, evaluation)
    assert 0 < threshold < 1 and 1 / 3 < min_top1 < 1
    fresh, fresh_labels = _clips(centres, per_label=4, seed=2)
    logits, distance = head.predict(np.stack([clip[0] for clip in fresh]))
    assert (logits.argmax(1) == fresh_labels).all() and (distance <= threshold).all()
    stranger = np.abs(np.random.default_rng(3).normal(size=(1, FRAMES, DIM))) * 2
    assert head.predict(stranger)[1][0] > threshold


def test_a_model_survives_its_file() -> None:
    centres = np.abs(np.random.default_rng(0).normal(size=(2, DIM))) * 2
    clips, labels = _clips(centres, per_label=3, seed=1)
    model = CustomModel(fit_head(clips, labels, 2), {"name": "m", "labels": ["a", "b"]})
    again = CustomModel.from_bytes(model.to_bytes())
    assert again.description == model.description
    batch = np.stack([clip[0] for clip in clips])
    np.testing.assert_allclose(again.head.predict(batch)[0], model.head.predict(batch)[0], 1e-5)
