"""Which open-set score flags actions the model never saw? Measured by leaving one class out.

The unseen-action clips (export, `unseen-check`) are the test: choosing a score on them would be
choosing on the test. Here each of the nine classes in turn plays the unseen action: heads are
trained on the other eight (the run's recipe and chosen epoch count, on its cached features),
thresholds are set on the other eight's validation clips as export sets them (97.5 % of their
distances, 2.5 % of their top-1 probabilities), and each score is judged by the share of the
left-out class's clips (training and validation, none seen by those heads) that it flags.

    python -m training open-set-study --run-dir runs/effnet_temporal_ensemble --data ../shared/data
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from training.classify.clip_cache import ClipCache
from training.classify.datasets import ClipDataset
from training.classify.frozen_features import (
    features_of_maps,
    head_optimiser_and_loss,
    train_epoch,
)
from training.classify.models.registry import build_model, get_family
from training.classify.open_set import (
    PROBABILITY_QUANTILE,
    THRESHOLD_QUANTILE,
    class_distance,
)
from training.classify.training import load_checkpoint, prepare_split, saved_options

# score name -> (distance used, probability used); a missing part never flags.
CANDIDATES = {
    "centroid + probability (shipped before 2026-12-03)": ("centroid", True),
    "nearest clip + probability": ("nearest", True),
    "probability alone": (None, True),
    "centroid alone": ("centroid", False),
    "nearest clip alone": ("nearest", False),
    "Mahalanobis + probability (shipped)": ("mahalanobis", True),
    "Mahalanobis alone": ("mahalanobis", False),
}


def _cosine_distance(embedded: torch.Tensor, bank: torch.Tensor) -> np.ndarray:
    similarity = F.normalize(embedded, dim=1) @ F.normalize(bank, dim=1).T
    return (1.0 - similarity.max(dim=1).values).numpy()


@torch.no_grad()
def _serving_features(model, records, labels, spec, cache) -> torch.Tensor:
    """(N, T, 1280) frozen features of clips as the service sees them."""
    dataset = ClipDataset(records, labels, spec, cache, train=False)
    return torch.cat(
        [
            model.frame_features(dataset[i][0][None])
            for i in tqdm(range(len(dataset)), desc="training clips, serving view", leave=False)
        ]
    )


def leave_one_class_out(run_dir: Path, data: Path) -> dict:
    """Mean share of the left-out class flagged, per candidate score, over every class."""
    run_dir = Path(run_dir)
    reference, state = load_checkpoint(run_dir)
    if state["options"].get("refit_from"):
        raise ValueError(
            f"{run_dir} is a refit, trained on its validation clips: study its reference"
        )
    options = replace(saved_options(state, data), epochs=state["epoch"] + 1)
    labels, family = state["config"]["labels"], state["config"]["family"]
    spec = get_family(family).clip_spec
    split = prepare_split(options)
    cache = ClipCache(Path(options.cache_dir), spec.resize_short)

    train = torch.load(run_dir / "train_maps.pt", weights_only=True)
    val = torch.load(run_dir / "val_maps.pt", weights_only=True)
    train_x, train_y = features_of_maps(reference, train["maps"]), train["targets"]
    val_x, val_y = features_of_maps(reference, val["maps"]), val["targets"]
    served_path = run_dir / "train_serving_features.pt"
    if not served_path.exists():
        torch.save(_serving_features(reference, split.train, labels, spec, cache), served_path)
    served_x = torch.load(served_path, weights_only=True)
    served_y = torch.tensor([labels.index(r.label) for r in split.train])

    flagged: dict[str, dict[str, float]] = {name: {} for name in CANDIDATES}
    for left_out in tqdm(range(len(labels)), desc="classes left out"):
        kept = [k for k in range(len(labels)) if k != left_out]
        remap = torch.full((len(labels),), -1, dtype=torch.long)
        remap[kept] = torch.arange(len(kept))
        torch.manual_seed(options.seed + left_out)
        model = build_model(family, len(kept)).eval()
        rows = train_y != left_out
        fold_x, fold_y = train_x[rows], remap[train_y[rows]]
        optimiser, criterion = head_optimiser_and_loss(model, options, fold_y, len(kept))
        for epoch in range(options.epochs):
            train_epoch(model, fold_x, fold_y, optimiser, criterion, options, epoch)

        known_val = val_y != left_out
        unseen_x = torch.cat([val_x[~known_val], served_x[served_y == left_out]])
        if not len(unseen_x) or not known_val.any():  # a smoke run's split may lack the class
            continue
        known_emb, unseen_emb = val_x[known_val].mean(1), unseen_x.mean(1)
        bank_x, bank_y = served_x[served_y != left_out].mean(1), served_y[served_y != left_out]
        centroids = torch.stack([F.normalize(bank_x[bank_y == k], dim=1).mean(0) for k in kept])
        mahalanobis = class_distance(bank_x, bank_y.tolist())
        with torch.no_grad():
            distances = {  # (in-class validation clips, left-out class's clips)
                "centroid": [_cosine_distance(e, centroids) for e in (known_emb, unseen_emb)],
                "nearest": [_cosine_distance(e, bank_x) for e in (known_emb, unseen_emb)],
                "mahalanobis": [mahalanobis(e).numpy() for e in (known_emb, unseen_emb)],
            }
            top1 = [
                torch.softmax(model.head(x), 1).max(1).values.numpy()
                for x in (val_x[known_val], unseen_x)
            ]
        for name, (distance, use_probability) in CANDIDATES.items():
            confident = np.ones(len(unseen_x), bool)
            if distance:
                known, unseen = distances[distance]
                confident &= unseen <= np.quantile(known, THRESHOLD_QUANTILE)
            if use_probability:
                confident &= top1[1] >= np.quantile(top1[0], PROBABILITY_QUANTILE)
            flagged[name][labels[left_out]] = float((~confident).mean())

    result = {
        "run": str(run_dir),
        "classes": labels,
        "epochs": options.epochs,
        "flagged_when_left_out": {
            name: {
                "mean": round(float(np.mean(list(shares.values()))), 3),
                "per_class": {label: round(x, 3) for label, x in shares.items()},
            }
            for name, shares in flagged.items()
        },
    }
    (run_dir / "open_set_study.json").write_text(json.dumps(result, indent=2))
    return result
