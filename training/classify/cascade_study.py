"""Could the default skip I3D on the clips Lite0 is sure of? Group CV decides.

`i3d_effnet_temporal` costs about nine times `effnet_temporal`'s CPU time, almost all of it
I3D's. The candidate runs the Lite0 branch first and lets a clip exit with Lite0's answer when
Lite0's top-1 probability is at least `tau` and its open-set distance (open_set.py's, on Lite0's
frozen features) at most `d`, the 97.5 % quantile of that distance over the training +
validation clips scored out of fold; every other clip gets the fused answer as before. `tau` is
the smallest of a fixed grid at which every exiting clip is right out of fold, plus a margin.
The rule it had to pass was written before its figures (docs/training.md).

    python -m training cascade-study --data ../shared/data --out runs/fusion_study

Same 4-fold group CV and head seeds as the fusion study (its cached features and
log-probabilities in `out` are reused). Leaving each class out in turn (Lite0's heads by its
recipe on the other eight), the share of the left-out class's clips that would exit bounds what
the open set can lose: an exiting clip is called confident.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from training.classify.frozen_features import train_heads
from training.classify.fusion_study import branch_cv
from training.classify.fusion_training import fitted_frame_exit
from training.classify.group_cv import cv_summary, heads_averaged, out_of_fold_distances
from training.classify.models.i3d_effnet_temporal import cascade_exits
from training.classify.open_set import class_distance

TAU_GRID = [round(0.5 + 0.05 * i, 2) for i in range(10)]  # 0.50 ... 0.95
TAU_MARGIN = 0.05


def choose_tau(
    frame_log_probs: dict[int, torch.Tensor], distances: torch.Tensor, d: float, targets
) -> float:
    """The smallest tau on the grid at which every seed's exiting clips are all right, plus the
    margin (capped at the grid's top)."""
    for tau in TAU_GRID:
        if all(
            bool((lp.argmax(1) == targets)[cascade_exits(lp, distances, tau, d)].all())
            for lp in frame_log_probs.values()
        ):
            return min(round(tau + TAU_MARGIN, 2), TAU_GRID[-1])
    return TAU_GRID[-1]


def left_out_exits(study, features: dict, tau: float, d: float) -> dict[str, tuple[int, int]]:
    """Per class left out: how many of its clips (of how many) Lite0 heads trained on the other
    eight classes (the branch's recipe, seed 0) would let exit."""
    augmented, serving = features["augmented"], features["serving"].float()
    shares = {}
    for k, label in enumerate(tqdm(study.labels, desc="leaving each class out", unit="class")):
        known = study.targets != k
        remap = {old: new for new, old in enumerate(sorted(set(study.targets[known].tolist())))}
        known_y = torch.tensor([remap[t] for t in study.targets[known].tolist()])
        views = augmented.shape[1]
        torch.manual_seed(k)
        model = train_heads(
            study.family,
            study.options,
            augmented[known].flatten(0, 1).float(),
            known_y.repeat_interleave(views),
            len(remap),
        )
        distance = class_distance(serving[known].mean(1), known_y.tolist())
        with torch.no_grad():
            log_probs = model.head(serving[~known])
            left_distance = distance(serving[~known].mean(1))
        exiting = cascade_exits(log_probs, left_distance, tau, d)
        shares[label] = (int(exiting.sum()), len(exiting))
    return shares


def cascade_study(data: Path, out: Path, max_clips: int = 0) -> dict:
    out = Path(out)
    studies, features, log_probs = branch_cv(data, out, max_clips)
    frames, targets = studies["frames"], studies["frames"].targets
    fused = heads_averaged(log_probs["video"], log_probs["frames"])
    distances = torch.from_numpy(
        out_of_fold_distances(frames, features["frames"]["serving"].float().mean(1))
    )
    d = float(fitted_frame_exit(studies, out).threshold)  # their 97.5 % quantile, as shipped
    tau = choose_tau(log_probs["frames"], distances, d, targets)
    exits = {s: cascade_exits(lp, distances, tau, d) for s, lp in log_probs["frames"].items()}
    cascade = {s: torch.where(exits[s][:, None], log_probs["frames"][s], fused[s]) for s in fused}
    result = {
        "clips": len(targets),
        "frame_distance_threshold": round(d, 6),
        "tau": tau,
        "exit_share": round(float(np.mean([e.float().mean() for e in exits.values()])), 4),
        "fusion": cv_summary(fused, frames),
        "cascade": cv_summary(cascade, frames),
    }
    left_out = left_out_exits(
        replace(frames, options=replace(frames.options, seed=0)), features["frames"], tau, d
    )
    result["left_out_exits"] = {label: f"{n} of {m}" for label, (n, m) in left_out.items()}
    exited, clips = (sum(column) for column in zip(*left_out.values(), strict=True))
    result["left_out_exit_share"] = round(exited / clips, 4)
    tqdm.write(json.dumps(result, indent=2))
    (out / "cascade_study.json").write_text(json.dumps(result, indent=2))
    return result
