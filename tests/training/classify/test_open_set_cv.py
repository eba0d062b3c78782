"""Open-set thresholds estimated by group CV: each clip scored as one of groups never seen."""

import json
from pathlib import Path

import numpy as np
import torch

from service.contract.manifest import load_manifest_content
from tests.utils.data import REPO_ROOT, SHARED_DATA
from training.classify.i3d_study import recipe_study
from training.classify.open_set import class_distance
from training.classify.open_set_cv import cv_thresholds, open_set_cv, out_of_fold_distances


def test_a_clip_is_measured_against_the_other_folds_only() -> None:
    study = recipe_study(SHARED_DATA, REPO_ROOT / "exported_models", "effnet_temporal", 3)
    embedded = torch.randn(len(study.records), 16, generator=torch.Generator().manual_seed(0))
    distances = out_of_fold_distances(study, embedded)

    assert len(set(study.folds.tolist())) > 1
    for fold in set(study.folds.tolist()):
        held = study.folds == fold
        alone = class_distance(embedded[~held], study.targets[~held].tolist())(embedded[held])
        np.testing.assert_allclose(distances[held], alone.numpy(), rtol=1e-5)
    in_sample = class_distance(embedded, study.targets.tolist())(embedded).numpy()
    assert not np.allclose(in_sample, distances)  # fitted without the clip's own fold


def test_thresholds_are_the_exports_quantiles_of_out_of_fold_scores() -> None:
    distances, top1 = np.linspace(0, 1, 401), np.linspace(0, 1, 401)
    assert cv_thresholds(distances, top1) == (0.975, 0.025)


def test_open_set_cv_scores_the_recipe_out_of_fold_and_caches(tmp_path: Path) -> None:
    models = REPO_ROOT / "exported_models"
    result = open_set_cv(SHARED_DATA, tmp_path, "effnet_temporal", models, max_clips=3)

    entry = next(
        c for c in load_manifest_content(models).classifiers if c.name == "effnet_temporal"
    )
    assert result["recipe"] == {k: entry.training[k] for k in ("epochs", "seed")}
    assert result["clips"] == 6 and result["threshold"] > 0
    assert 0 < result["min_top1_probability"] <= 1
    assert result["before"]["threshold"] == entry.open_set.threshold  # the manifest untouched
    assert json.loads((tmp_path / "open_set_cv_effnet_temporal.json").read_text()) == result
    assert open_set_cv(SHARED_DATA, tmp_path, "effnet_temporal", models, max_clips=3) == result
