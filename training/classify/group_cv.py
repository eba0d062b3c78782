"""Group cross-validation of a frozen-feature recipe: what the studies of the default share.

Held-out groups are the test, and the validation split (84 clips) is saturated, so a study
compares candidates (an input size, a serving view, a pooling) by cross-validation over the
training + validation clips: each class's groups dealt round-robin into folds, a finished run's
recipe (heads, epochs) trained on augmented views of the other folds, scored on the fold.

    study = study_setup(Path("runs/effnet_temporal"), Path("../shared/data"))
    log_probs = cross_validated_log_probs(study, augmented, {"centre": serving[:, None]})
    summary = cv_summary(log_probs["centre"], study)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from service.video.preprocess import ClipSpec, resize_short_side
from training.classify.clip_cache import decode_clip
from training.classify.datasets import ClipDataset
from training.classify.frozen_features import TRAIN_VIEWS, reference_recipe, train_heads
from training.classify.models.effnet_temporal import EffNetTemporal
from training.classify.open_set import class_distance
from training.classify.training import TrainOptions, prepare_split, trained_clip_spec
from training.classify.ucf101 import ClipRecord

FOLDS = 4
HEAD_SEEDS = (0, 1, 2)


@dataclass(frozen=True)
class Study:
    """A finished run's recipe and the clips it is cross-validated on."""

    reference: EffNetTemporal
    options: TrainOptions
    labels: list[str]
    family: str
    spec: ClipSpec
    records: list[ClipRecord]
    targets: torch.Tensor
    folds: np.ndarray


def group_folds(records: list[ClipRecord], folds: int) -> np.ndarray:
    """Fold of each clip: each class's groups in sorted order, dealt round-robin."""
    fold_of = {}
    for label in sorted({r.label for r in records}):
        groups = sorted({r.group for r in records if r.label == label})
        fold_of.update({(label, g): i % folds for i, g in enumerate(groups)})
    return np.array([fold_of[(r.label, r.group)] for r in records])


def study_setup(run_dir: Path, data: Path) -> Study:
    reference, options, config = reference_recipe(run_dir, data)
    split = prepare_split(options)
    records = split.train + split.val
    labels = config["labels"]
    return Study(
        reference=reference,
        options=options,
        labels=labels,
        family=config["family"],
        spec=trained_clip_spec(config),
        records=records,
        targets=torch.tensor([labels.index(r.label) for r in records]),
        folds=group_folds(records, FOLDS),
    )


class OneClipDecoded:
    """A ClipCache stand-in for one size that decodes each clip once for all of its views and
    keeps nothing on disk (a second 22 GB cache per size would not fit)."""

    def __init__(self, resize_short: int) -> None:
        self.resize_short = resize_short
        self._record: ClipRecord | None = None
        self._frames: np.ndarray | None = None

    def frames(self, record: ClipRecord) -> np.ndarray:
        if record is not self._record:
            decoded = decode_clip(record)
            self._frames = np.stack([resize_short_side(f, self.resize_short) for f in decoded])
            self._record = record
        return self._frames


@torch.no_grad()
def augmented_and_serving_features(
    study: Study,
    featurize: Callable[[torch.Tensor], dict[str, torch.Tensor]],
    size: int,
    decoded: OneClipDecoded | None = None,
) -> dict[str, dict[str, torch.Tensor]]:
    """For each output of `featurize` ((B, 3, T, H, W) clips -> {name: (B, T, D)}), the
    (N, views, T, D) features of TRAIN_VIEWS augmented views of every clip (the run's view seed)
    and the (N, T, D) features of its serving view, at input `size`. `decoded` gives each clip's
    frames (default: the clip's own, decoded at `size`)."""
    spec = replace(study.spec, resize_short=size, crop=size)
    decoded = decoded or OneClipDecoded(size)
    seed = study.options.seed
    augmented_set = ClipDataset(study.records, study.labels, spec, decoded, train=True, seed=seed)
    serving_set = ClipDataset(study.records, study.labels, spec, decoded, train=False)
    augmented, serving = {}, {}
    for i in tqdm(range(len(study.records)), desc=f"features at {size} px", unit="clip"):
        views = torch.stack([augmented_set[i][0] for _ in range(TRAIN_VIEWS)])
        for name, f in featurize(views).items():
            augmented.setdefault(name, []).append(f.half())
        for name, f in featurize(serving_set[i][0][None]).items():
            serving.setdefault(name, []).append(f[0].half())
    return {
        name: {"augmented": torch.stack(augmented[name]), "serving": torch.stack(serving[name])}
        for name in augmented
    }


def cached(path: Path, compute: Callable[[], dict]) -> dict:
    """`compute()`'s features, saved at `path` the first time: a study resumes from them."""
    if not path.exists():
        torch.save(compute(), path)
    return torch.load(path, weights_only=True)


def served_cv_log_probs(study: Study, features: dict[str, torch.Tensor], path: Path) -> dict:
    """Per head seed, (N, classes) cross-validated log-probabilities of the serving view, for
    {"augmented", "serving"} features as `augmented_and_serving_features` gives; cached."""

    def compute() -> dict:
        served = {"served": features["serving"][:, None]}
        return cross_validated_log_probs(study, features["augmented"], served)["served"]

    return cached(path, compute)


def heads_averaged(
    first: dict[int, torch.Tensor], second: dict[int, torch.Tensor]
) -> dict[int, torch.Tensor]:
    """Per head seed, the mean of two sets of heads' log-probabilities (late fusion)."""
    return {seed: (first[seed] + second[seed]) / 2 for seed in first}


def cross_validated_log_probs(
    study: Study, augmented: torch.Tensor, candidates: dict[str, torch.Tensor]
) -> dict[str, dict[int, torch.Tensor]]:
    """For each head seed, (N, classes) log-probabilities of each clip by heads that never saw
    its fold, for each candidate way of serving it: `candidates` maps a name to (N, views, T, D)
    features, and a clip with several views scores the mean over its views. The heads of a fold
    are trained once a seed, on `augmented` (N, views, T, D), and score every candidate."""
    scores = {name: {} for name in candidates}
    views, num_classes = augmented.shape[1], len(study.labels)
    for seed in tqdm(HEAD_SEEDS, desc="cross-validation", unit="head seed", leave=False):
        seeded = replace(study.options, seed=seed)
        for name in candidates:
            scores[name][seed] = torch.zeros(len(study.targets), num_classes)
        for fold in range(study.folds.max() + 1):
            held = torch.from_numpy(study.folds == fold)
            torch.manual_seed(seed * 100 + fold)
            train_x = augmented[~held].flatten(0, 1).float()
            train_y = study.targets[~held].repeat_interleave(views)
            model = train_heads(study.family, seeded, train_x, train_y, num_classes)
            with torch.no_grad():
                for name, served in candidates.items():
                    per_view = [model.head(view.float()) for view in served[held].unbind(1)]
                    scores[name][seed][held] = torch.stack(per_view).mean(0)
    return scores


def out_of_fold_distances(study: Study, embedded: torch.Tensor) -> np.ndarray:
    """Each clip's distance to the classes of the other folds' clips, (N,)."""
    distances = torch.zeros(len(study.records))
    for fold in range(study.folds.max() + 1):
        held = torch.from_numpy(study.folds == fold)
        distance = class_distance(embedded[~held], study.targets[~held].tolist())
        with torch.no_grad():
            distances[held] = distance(embedded[held])
    return distances.numpy()


def cv_summary(log_probs: dict[int, torch.Tensor], study: Study) -> dict:
    """CV top-1 over all clips (mean over head seeds), per seed and per class."""
    right = {seed: (lp.argmax(1) == study.targets).numpy() for seed, lp in log_probs.items()}
    mean = np.mean(list(right.values()), axis=0)  # per clip, over head seeds
    return {
        "cv_top1": round(float(mean.mean()), 4),
        "per_seed": {str(s): round(float(c.mean()), 4) for s, c in right.items()},
        "per_class": {
            label: round(float(mean[(study.targets == k).numpy()].mean()), 3)
            for k, label in enumerate(study.labels)
            if (study.targets == k).any()
        },
    }
