"""Train a temporal head on cached features of a frozen pretrained encoder.

Per-frame features are computed once per clip (several augmented views of each training clip,
the serving view of val/test clips), so the head trains in seconds; the checkpoint holds the
whole model (encoder + head), so evaluation and export are those of any other family.

    run_frozen_training(TrainOptions(model="effnet_temporal", data=Path("../shared/data"), ...))
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from training.checkpoints import BEST, LAST, save_checkpoint
from training.classify.datasets import ClipDataset
from training.classify.models.registry import build_model
from training.classify.training import (
    TrainOptions,
    checkpoint_state,
    evaluate_run,
    start_run,
)

TRAIN_VIEWS = 6  # augmented views per training clip


@torch.no_grad()
def _features(
    model: nn.Module, dataset: ClipDataset, views: int, desc: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """(N * views, T, D) frame features and (N * views,) targets."""
    model.eval()
    features, targets = [], []
    for _ in range(views):
        for i in tqdm(range(len(dataset)), desc=desc, unit="clip", leave=False):
            clip, target = dataset[i]
            features.append(model.frame_features(clip[None])[0])
            targets.append(target)
    return torch.stack(features), torch.tensor(targets)


def _cached_features(model, dataset, views, path: Path, desc: str):
    if path.exists():
        saved = torch.load(path, weights_only=True)
        return saved["features"], saved["targets"]
    features, targets = _features(model, dataset, views, desc)
    torch.save({"features": features, "targets": targets}, path)
    return features, targets


def run_frozen_training(options: TrainOptions) -> dict:
    run_dir, spec, split, labels, cache = start_run(options)
    model = build_model(options.model, len(labels))

    started = time.perf_counter()
    train_set = ClipDataset(split.train, labels, spec, cache, train=True, seed=options.seed)
    val_set = ClipDataset(split.val, labels, spec, cache, train=False)
    train_x, train_y = _cached_features(
        model, train_set, TRAIN_VIEWS, run_dir / "train_features.pt", "train features"
    )
    val_x, val_y = _cached_features(model, val_set, 1, run_dir / "val_features.pt", "val features")

    head = model.head
    optimiser = torch.optim.AdamW(
        head.parameters(), lr=options.lr, weight_decay=options.weight_decay
    )
    class_weights = None
    if options.balance_classes:  # each class weighs the same in the loss, however few its clips
        counts = torch.bincount(train_y, minlength=len(labels)).clamp(min=1).float()
        class_weights = counts.sum() / (len(labels) * counts)
    criterion = nn.CrossEntropyLoss(weight=class_weights, label_smoothing=options.label_smoothing)
    generator = torch.Generator().manual_seed(options.seed)
    best, history = -1.0, []
    for epoch in tqdm(range(options.epochs), desc="head epochs", unit="epoch"):
        head.train()
        order = torch.randperm(len(train_x), generator=generator)
        losses = []
        for batch in order.split(options.batch_size):
            loss = criterion(head(train_x[batch]), train_y[batch])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
        head.eval()
        with torch.no_grad():
            val_top1 = float((head(val_x).argmax(1) == val_y).float().mean())
        history.append({"epoch": epoch, "loss": float(np.mean(losses)), "val_top1": val_top1})
        progress = {
            "epoch": epoch,
            "best_metric": max(best, val_top1),
            "history": history,
            "train_time_s": time.perf_counter() - started,
        }
        state = checkpoint_state(model, optimiser, options, spec, labels, progress)
        if val_top1 >= best:
            best = val_top1
            save_checkpoint(run_dir / BEST, state)
    save_checkpoint(run_dir / LAST, state)
    (run_dir / "history.json").write_text(json.dumps(history, indent=2))
    return evaluate_run(run_dir, options.data, split)
