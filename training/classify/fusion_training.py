"""Train `i3d_effnet_temporal`: each branch's heads by its own recipe, on cached features.

The recipes are the ones the two single-encoder models ship with and the fusion study measured
(docs/training.md): I3D's five heads for `--epochs` (60 by default), Lite0's five for 5 epochs
(what effnet_temporal's validation chose), both with their family's learning rate and batch
size. With the recipes fixed, no epoch is chosen on validation clips: the heads train on the
training and validation groups together, as the single-encoder models' refits do, and the
held-out groups stay the test.

Features: TRAIN_VIEWS augmented views of every training + validation clip through both frozen
encoders, cached in the run folder (a rerun trains from them in about a minute) under the names
the fusion study caches them, so either can reuse the other's.

    run_fusion_training(TrainOptions(model="i3d_effnet_temporal", data=..., run_dir=..., epochs=60))
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from training.checkpoints import BEST, LAST, save_checkpoint
from training.classify.frozen_features import train_heads
from training.classify.group_cv import (
    FOLDS,
    Study,
    augmented_and_serving_features,
    cached,
    group_folds,
    out_of_fold_distances,
)
from training.classify.models.i3d_effnet_temporal import EXIT_MIN_TOP1, FrameExit, lite0_frames
from training.classify.models.i3d_temporal import I3D_CLIP_SPEC
from training.classify.models.registry import build_model, get_family
from training.classify.open_set import THRESHOLD_QUANTILE, class_distance
from training.classify.training import (
    TrainOptions,
    checkpoint_state,
    evaluate_run,
    prepare_split,
)
from training.runs import prepare_run_dir

FRAME_BRANCH_EPOCHS = 5


@dataclass(frozen=True)
class Branch:
    attribute: str  # of I3DEffNetTemporal
    family: str  # whose heads and recipe
    features_name: str  # cache file: features_<name>.pt
    featurize: Callable[[torch.nn.Module, torch.Tensor], torch.Tensor]


BRANCHES = (
    Branch("video", "i3d_temporal", "i3d_temporal", lambda m, clips: m.frame_features(clips)),
    Branch(
        "frames",
        "effnet_temporal",
        "lite0_odd_frames",
        lambda m, clips: m.frame_features(lite0_frames(clips)),
    ),
)


def branch_studies(options: TrainOptions) -> dict[str, Study]:
    """Per branch: its model (frozen encoder and heads), its recipe, and the training +
    validation clips at the fusion's input, folded by group as the studies fold them."""
    split = prepare_split(options)
    records = split.train + split.val
    targets = torch.tensor([split.labels.index(r.label) for r in records])
    studies = {}
    for branch in BRANCHES:
        family = get_family(branch.family)
        epochs = options.epochs if branch.attribute == "video" else FRAME_BRANCH_EPOCHS
        recipe = replace(
            options,
            model=branch.family,
            epochs=min(epochs, options.epochs),
            lr=family.lr,
            batch_size=family.batch_size,
        )
        studies[branch.attribute] = Study(
            reference=build_model(branch.family, len(split.labels)).eval(),
            options=recipe,
            labels=split.labels,
            family=branch.family,
            spec=I3D_CLIP_SPEC,
            records=records,
            targets=targets,
            folds=group_folds(records, FOLDS),
        )
    return studies


def branch_features(study: Study, branch: Branch, folder: Path) -> dict[str, torch.Tensor]:
    """{"augmented": (N, views, T, D), "serving": (N, T, D), "seconds": their computing time}
    of the branch's encoder; cached."""

    def compute() -> dict[str, torch.Tensor]:
        started = time.perf_counter()
        features = augmented_and_serving_features(
            study, lambda clips: {"f": branch.featurize(study.reference, clips)}, study.spec.crop
        )["f"]
        return {**features, "seconds": torch.tensor(time.perf_counter() - started)}

    return cached(folder / f"features_{branch.features_name}.pt", compute)


def fitted_frame_exit(studies: dict[str, Study], folder: Path) -> FrameExit:
    """When Lite0 may answer alone (cascade_study.py): its distance to the classes of every
    training + validation clip at most the 97.5 % quantile of that distance scored out of fold,
    rescaled to I3D's quantile (the threshold open-set-cv gives the default), and its top-1
    probability at least EXIT_MIN_TOP1."""
    embedded, quantile = {}, {}
    for branch in BRANCHES:
        study = studies[branch.attribute]
        serving = branch_features(study, branch, folder)["serving"].float().mean(1)
        embedded[branch.attribute] = serving
        quantile[branch.attribute] = float(
            np.quantile(out_of_fold_distances(study, serving), THRESHOLD_QUANTILE)
        )
    frames = studies["frames"]
    return FrameExit(
        class_distance(embedded["frames"], frames.targets.tolist()),
        threshold=quantile["frames"],
        distance_scale=quantile["video"] / quantile["frames"],
        min_top1=EXIT_MIN_TOP1,
    )


def run_fusion_training(options: TrainOptions) -> dict:
    run_dir = prepare_run_dir(options)
    studies = branch_studies(options)
    labels = studies["video"].labels
    model = build_model(options.model, len(labels)).eval()
    # Features computed once, perhaps by an earlier run (or the study): counted all the same.
    train_time_s = 0.0
    for branch in tqdm(BRANCHES, desc="branches", unit="branch"):
        study = studies[branch.attribute]
        features = branch_features(study, branch, run_dir)
        train_time_s += float(features["seconds"])
        augmented = features["augmented"]
        x = augmented.flatten(0, 1).float()
        y = study.targets.repeat_interleave(augmented.shape[1])
        torch.manual_seed(study.options.seed)
        started = time.perf_counter()
        trained = train_heads(branch.family, study.options, x, y, len(labels))
        train_time_s += time.perf_counter() - started
        getattr(model, branch.attribute).head = trained.head
    model.frame_exit = fitted_frame_exit(studies, run_dir)
    progress = {
        "epoch": options.epochs - 1,
        "best_metric": None,  # nothing is chosen on validation clips: they are trained on
        "history": [],
        "train_time_s": train_time_s,
    }
    state = checkpoint_state(model, None, options, I3D_CLIP_SPEC, labels, progress)
    save_checkpoint(run_dir / BEST, state)
    save_checkpoint(run_dir / LAST, state)
    train_and_val = len(studies["video"].records)
    return evaluate_run(run_dir, options.data, train_clips=train_and_val)
