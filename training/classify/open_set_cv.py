"""Open-set thresholds from group cross-validation rather than from 84 validation clips.

The export takes a model's two open-set thresholds from its validation clips: the 97.5 %
quantile of their distances and the 2.5 % quantile of their top-1 probabilities. With 84 clips
those are about the second or third most extreme clip. This estimates the same two quantiles
from every training + validation clip, each scored as a clip of groups the model never saw: by
4-fold group CV, the distance to class means (and shrunk covariance) of the other three folds'
serving embeddings, as the export builds them from the training clips, and the top-1
probability of heads of the shipped recipe trained on the other folds' augmented views (three
head seeds, pooled).

    python -m training open-set-cv --data ../shared/data --name i3d_effnet_temporal --write

`--write` puts the thresholds into the model's manifest entry, with its held-out in-class
confident share and its unseen-action flagged shares measured again through the ONNX file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from service.contract.manifest import load_manifest_content, upsert_classifier
from training.classify.export import unseen_action_paths
from training.classify.fusion_study import FUSION, fusion_cv
from training.classify.group_cv import (
    Study,
    augmented_and_serving_features,
    cached,
    out_of_fold_distances,
    served_cv_log_probs,
)
from training.classify.i3d_study import recipe_study
from training.classify.open_set import PROBABILITY_QUANTILE, THRESHOLD_QUANTILE, is_confident
from training.classify.unseen_clips import (
    check_unseen,
    held_out_clips,
    manifest_confident,
    manifest_session,
    open_set_scores,
    packaged_clip_paths,
)

METHOD_CV = (
    "confident when the Mahalanobis distance (shared covariance, Ledoit-Wolf shrinkage, per "
    "dimension) of the unit-length clip embedding to the nearest training-class mean is at most "
    f"its {THRESHOLD_QUANTILE:.1%} quantile and the top-1 probability at least its "
    f"{PROBABILITY_QUANTILE:.1%} quantile over the training + validation clips, each scored "
    "out of fold by 4-fold group cross-validation (python -m training open-set-cv)"
)

# The default's clips that Lite0 answers alone never reach I3D (I3DEffNetTemporal.cascade).
CASCADE_NOTE = (
    "; a clip the Lite0 branch answers alone is measured by Lite0's distance, rescaled by I3D's "
    "97.5 % quantile over Lite0's"
)


def out_of_fold_scores(
    data: Path, out: Path, name: str, models_dir: Path, max_clips: int
) -> tuple[Study, dict[str, torch.Tensor], dict[int, torch.Tensor]]:
    """For the exported classifier `name`: its recipe's study, the frozen features its open-set
    embedding averages, and per head seed the out-of-fold log-probabilities; cached in `out`."""
    (entry,) = [c for c in load_manifest_content(models_dir).classifiers if c.name == name]
    if entry.family == FUSION:  # I3D's embedding; the two branches' heads averaged
        study, features, log_probs = fusion_cv(data, out, max_clips)
        return study, features, log_probs["fusion"]
    study = recipe_study(data, models_dir, name, max_clips)
    model = study.reference
    features = cached(
        out / f"features_{name}.pt",
        lambda: augmented_and_serving_features(
            study, lambda clips: {"f": model.frame_features(clips)}, study.spec.crop
        )["f"],
    )
    return study, features, served_cv_log_probs(study, features, out / f"log_probs_{name}.pt")


def cv_thresholds(distances: np.ndarray, top1: np.ndarray) -> tuple[float, float]:
    """The export's quantiles, over out-of-fold scores."""
    return (
        float(np.quantile(distances, THRESHOLD_QUANTILE)),
        float(np.quantile(top1, PROBABILITY_QUANTILE)),
    )


def open_set_cv(
    data: Path,
    out: Path,
    name: str,
    models_dir: Path = Path("exported_models"),
    write: bool = False,
    max_clips: int = 0,
) -> dict:
    """Cross-validated thresholds for the exported classifier `name` (features and scores cached
    in `out`); with `write`, stored in its manifest entry with its measured shares."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    study, features, log_probs = out_of_fold_scores(data, out, name, models_dir, max_clips)
    # The embedding the exported distance measures: the frozen features averaged over time.
    distances = out_of_fold_distances(study, features["serving"].float().mean(1))
    top1 = torch.cat([torch.softmax(lp, 1).max(1).values for lp in log_probs.values()]).numpy()
    threshold, min_top1 = cv_thresholds(distances, top1)
    (entry,) = [c for c in load_manifest_content(models_dir).classifiers if c.name == name]
    result = {
        "name": name,
        "clips": len(study.records),
        "recipe": {"epochs": study.options.epochs, "seed": study.options.seed},
        "threshold": round(threshold, 6),
        "min_top1_probability": round(min_top1, 6),
        "before": {
            "threshold": entry.open_set.threshold,
            "min_top1_probability": entry.open_set.min_top1_probability,
        },
        "out_of_fold_confident": round(
            float(
                is_confident(np.tile(distances, len(log_probs)), top1, threshold, min_top1).mean()
            ),
            4,
        ),
    }
    if write:
        result["measured"] = _write_thresholds(models_dir, data, name, threshold, min_top1)
    tqdm.write(json.dumps(result))
    (out / f"open_set_cv_{name}.json").write_text(json.dumps(result, indent=2))
    return result


def _write_thresholds(
    models_dir: Path, data: Path, name: str, threshold: float, min_top1: float
) -> dict:
    """Store the thresholds, then measure through the ONNX file as the service answers: held-out
    in-class clips kept confident, unseen-action clips (shared, then from packages) flagged."""
    (entry,) = [c for c in load_manifest_content(models_dir).classifiers if c.name == name]
    entry.open_set.threshold = round(threshold, 6)
    entry.open_set.min_top1_probability = round(min_top1, 6)
    entry.open_set.method = METHOD_CV + (CASCADE_NOTE if entry.family == FUSION else "")
    session = manifest_session(models_dir, entry)
    held_out = held_out_clips(data, name, entry.labels, entry.training)
    confident = manifest_confident(entry, open_set_scores(session, entry, held_out, "held out"))
    shared = unseen_action_paths(data, entry.labels)
    shared_confident = manifest_confident(entry, open_set_scores(session, entry, shared, "unseen"))
    entry.open_set.test_in_class_confident = float(confident.mean())  # type: ignore[attr-defined]
    entry.open_set.unseen_action_clips = len(shared)  # type: ignore[attr-defined]
    entry.open_set.unseen_actions_flagged = float((~shared_confident).mean())  # type: ignore[attr-defined]
    upsert_classifier(models_dir, entry)
    fetched = check_unseen(models_dir, [name], packaged_clip_paths())[name]  # writes its own
    return {
        "held_out_confident": round(float(confident.mean()), 4),
        "unseen_flagged": f"{int((~shared_confident).sum())} of {len(shared)} shared, "
        f"{fetched['flagged']} of {fetched['clips']} from packages",
    }
