"""Which open-set score flags actions the model never saw? Measured by leaving one class out.

The unseen-action clips (export, `unseen-check`) are the test: choosing a score on them would be
choosing on the test. Here each of the nine classes in turn plays the unseen action: heads are
trained on the other eight (the run's recipe and chosen epoch count, on its cached features),
thresholds are set on the other eight's validation clips as export sets them (97.5 % of their
distances, 2.5 % of their top-1 probabilities), and each score is judged by the share of the
left-out class's clips (training and validation, none seen by those heads) that it flags.

    python -m training open-set-study --run-dir runs/effnet_temporal --data ../shared/data
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from training.classify.clip_cache import ClipCache
from training.classify.datasets import ClipDataset
from training.classify.frozen_features import features_of_maps, reference_recipe, train_heads
from training.classify.open_set import (
    PROBABILITY_QUANTILE,
    THRESHOLD_QUANTILE,
    class_distance,
)
from training.classify.training import prepare_split, trained_clip_spec

# score name -> (distance used, probability used); a missing part never flags.
CANDIDATES = {
    "centroid + probability (shipped before 2026-12-03)": ("centroid", True),
    "nearest clip + probability": ("nearest", True),
    "probability alone": (None, True),
    "centroid alone": ("centroid", False),
    "nearest clip alone": ("nearest", False),
    "Mahalanobis + probability (shipped)": ("mahalanobis", True),
    "Mahalanobis alone": ("mahalanobis", False),
    "mid-level Mahalanobis + probability": ("mid", True),
    "two layers' Mahalanobis + probability": ("two_layers", True),
    "relative Mahalanobis + probability": ("relative", True),
    "Mahalanobis of mean and spread over frames + probability": ("temporal", True),
    "per-frame Mahalanobis + probability": ("per_frame", True),
}


def _cosine_distance(embedded: torch.Tensor, bank: torch.Tensor) -> np.ndarray:
    similarity = F.normalize(embedded, dim=1) @ F.normalize(bank, dim=1).T
    return (1.0 - similarity.max(dim=1).values).numpy()


@torch.no_grad()
def _serving_views(model, records, labels, spec, cache) -> dict[str, torch.Tensor]:
    """Clips as the service sees them: (N, T, 1280) ImageNet features and (N, T, C) trunk maps
    pooled over space (the mid-level layer the frozen top starts from)."""
    dataset = ClipDataset(records, labels, spec, cache, train=False)
    features, mid = [], []
    for i in tqdm(range(len(dataset)), desc="training clips, serving view", leave=False):
        maps = model.frame_maps(dataset[i][0][None])
        features.append(model.features_from_maps(maps))
        mid.append(maps.mean((3, 4)))
    return {"features": torch.cat(features), "mid": torch.cat(mid)}


def _candidate_distances(
    bank: dict[str, torch.Tensor], bank_y: torch.Tensor, clips: list[dict[str, torch.Tensor]]
) -> dict[str, list[np.ndarray]]:
    """Every candidate distance of each clip set, from the training clips in `bank`.

    `bank` and each clip set hold "features" (N, T, 1280) and "mid" (N, T, C); the first clip
    set is the in-class validation clips, which also scale the two layers' sum.
    """
    targets = bank_y.tolist()
    top, mid = bank["features"], bank["mid"]
    bank_clips = top.mean(1)
    centroids = torch.stack(
        [F.normalize(bank_clips[bank_y == k], dim=1).mean(0) for k in bank_y.unique()]
    )
    mahalanobis = class_distance(bank_clips, targets)
    mid_level = class_distance(mid.mean(1), targets)
    background = class_distance(bank_clips, [0] * len(targets))
    temporal = class_distance(_mean_and_spread(top), targets)
    frames = class_distance(top.flatten(0, 1), bank_y.repeat_interleave(top.shape[1]).tolist())

    def per_frame(x: torch.Tensor) -> np.ndarray:
        return frames(x.flatten(0, 1)).reshape(x.shape[:2]).mean(1).numpy()

    distances: dict[str, list[np.ndarray]] = {
        name: []
        for name in (
            "centroid",
            "nearest",
            "mahalanobis",
            "mid",
            "relative",
            "temporal",
            "per_frame",
        )
    }
    for clip_set in clips:
        x, clip = clip_set["features"], clip_set["features"].mean(1)
        top_distance = mahalanobis(clip).numpy()
        distances["centroid"].append(_cosine_distance(clip, centroids))
        distances["nearest"].append(_cosine_distance(clip, bank_clips))
        distances["mahalanobis"].append(top_distance)
        distances["mid"].append(mid_level(clip_set["mid"].mean(1)).numpy())
        distances["relative"].append(top_distance**2 - background(clip).numpy() ** 2)
        distances["temporal"].append(temporal(_mean_and_spread(x)).numpy())
        distances["per_frame"].append(per_frame(x))
    top_scale = np.median(distances["mahalanobis"][0])
    mid_scale = np.median(distances["mid"][0])
    distances["two_layers"] = [
        t / top_scale + m / mid_scale
        for t, m in zip(distances["mahalanobis"], distances["mid"], strict=True)
    ]
    return distances


def _mean_and_spread(features: torch.Tensor) -> torch.Tensor:
    """(N, T, D) -> (N, 2D): each unit-length frame feature's mean and spread over frames."""
    unit = F.normalize(features, dim=2)
    return torch.cat([unit.mean(1), unit.std(1, unbiased=False)], dim=1)


def leave_one_class_out(run_dir: Path, data: Path) -> dict:
    """Mean share of the left-out class flagged, per candidate score, over every class."""
    run_dir = Path(run_dir)
    reference, options, config = reference_recipe(run_dir, data)
    labels, family = config["labels"], config["family"]
    spec = trained_clip_spec(config)
    split = prepare_split(options)
    cache = ClipCache(Path(options.cache_dir), spec.resize_short)

    train = torch.load(run_dir / "train_maps.pt", weights_only=True)
    val = torch.load(run_dir / "val_maps.pt", weights_only=True)
    train_x, train_y = features_of_maps(reference, train["maps"]), train["targets"]
    val_x, val_y = features_of_maps(reference, val["maps"]), val["targets"]
    val_views = {"features": val_x, "mid": val["maps"].float().mean((3, 4))}
    served_path = run_dir / "train_serving_views.pt"
    if not served_path.exists():
        torch.save(_serving_views(reference, split.train, labels, spec, cache), served_path)
    served = torch.load(served_path, weights_only=True)
    served_y = torch.tensor([labels.index(r.label) for r in split.train])

    flagged: dict[str, dict[str, float]] = {name: {} for name in CANDIDATES}
    for left_out in tqdm(range(len(labels)), desc="classes left out"):
        kept = [k for k in range(len(labels)) if k != left_out]
        remap = torch.full((len(labels),), -1, dtype=torch.long)
        remap[kept] = torch.arange(len(kept))
        torch.manual_seed(options.seed + left_out)
        rows = train_y != left_out
        model = train_heads(family, options, train_x[rows], remap[train_y[rows]], len(kept))

        known_val = val_y != left_out
        seen = served_y != left_out
        known = {name: view[known_val] for name, view in val_views.items()}
        unseen = {  # the left-out class's validation clips and its training clips
            name: torch.cat([val_views[name][~known_val], served[name][~seen]])
            for name in val_views
        }
        if not len(unseen["features"]) or not known_val.any():  # a smoke split may lack it
            continue
        with torch.no_grad():
            distances = _candidate_distances(
                {name: served[name][seen] for name in served}, served_y[seen], [known, unseen]
            )
            top1 = [
                torch.softmax(model.head(x), 1).max(1).values.numpy()
                for x in (known["features"], unseen["features"])
            ]
        for name, (distance, use_probability) in CANDIDATES.items():
            confident = np.ones(len(unseen["features"]), bool)
            if distance:
                in_class, left_out_class = distances[distance]
                confident &= left_out_class <= np.quantile(in_class, THRESHOLD_QUANTILE)
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
