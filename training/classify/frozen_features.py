"""Train on cached per-frame maps of a frozen pretrained trunk: the loop for `effnet_*` families.

The trunk's maps are computed once per clip (several augmented views of each training clip, the
serving view of val/test clips) and kept in the run folder as float16. A family with a frozen
top trains only its temporal head, on features computed once from those maps (seconds an epoch);
one with a tuned top fine-tunes that copy of the last stages with the head (minutes an epoch).
Resumable from `last.pt`; the checkpoint holds the whole model, so evaluation and export are
those of any other family.

    run_frozen_training(TrainOptions(model="effnet_temporal", data=Path("../shared/data"), ...))
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from training.checkpoints import BEST, LAST, resume_state, save_checkpoint
from training.classify.datasets import ClipDataset
from training.classify.models.effnet_temporal import FEATURE_DIM, EffNetTemporal, HeadEnsemble
from training.classify.models.registry import build_model
from training.classify.training import (
    TrainOptions,
    checkpoint_state,
    evaluate_run,
    load_checkpoint,
    saved_options,
    start_run,
)

TRAIN_VIEWS = 6  # augmented views per training clip
TOP_LR_FACTOR = 0.1  # the pretrained top learns ten times slower than the new head
FEATURE_CHUNK = 64  # views per no-grad pass from maps to features


@torch.no_grad()
def _maps(
    model: EffNetTemporal, dataset: ClipDataset, views: int, desc: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """(N * views, T, C, h, w) float16 trunk maps and (N * views,) targets; `model` in
    inference mode (run_frozen_training puts it there, whether maps are computed or loaded)."""
    maps, targets = [], []
    for _ in range(views):
        for i in tqdm(range(len(dataset)), desc=desc, unit="clip", leave=False):
            clip, target = dataset[i]
            maps.append(model.frame_maps(clip[None])[0].half())
            targets.append(target)
    return torch.stack(maps), torch.tensor(targets)


def _cached_maps(model, dataset, views, path: Path, desc: str):
    if path.exists():
        saved = torch.load(path, weights_only=True)
        return saved["maps"], saved["targets"]
    maps, targets = _maps(model, dataset, views, desc)
    torch.save({"maps": maps, "targets": targets}, path)
    return maps, targets


@torch.no_grad()
def features_of_maps(model: EffNetTemporal, maps: torch.Tensor) -> torch.Tensor:
    """(N, T, 1280) features of cached maps, in chunks."""
    return torch.cat(
        [model.features_from_maps(chunk.float()) for chunk in maps.split(FEATURE_CHUNK)]
    )


def head_optimiser_and_loss(
    model: EffNetTemporal, options: TrainOptions, train_y: torch.Tensor, num_classes: int
) -> tuple[torch.optim.Optimizer, nn.Module]:
    """AdamW over the head (and a tuned top, slower); the loss, class-balanced if asked."""
    groups = [{"params": model.head.parameters(), "lr": options.lr}]
    if model.tuned_top is not None:
        groups.append({"params": model.tuned_top.parameters(), "lr": options.lr * TOP_LR_FACTOR})
    optimiser = torch.optim.AdamW(groups, weight_decay=options.weight_decay)
    class_weights = None
    if options.balance_classes:  # each class weighs the same in the loss, however few its clips
        counts = torch.bincount(train_y, minlength=num_classes).clamp(min=1).float()
        class_weights = counts.sum() / (num_classes * counts)
    criterion = nn.CrossEntropyLoss(weight=class_weights, label_smoothing=options.label_smoothing)
    return optimiser, criterion


def train_epoch(
    model: EffNetTemporal,
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    optimiser: torch.optim.Optimizer,
    criterion: nn.Module,
    options: TrainOptions,
    epoch: int,
) -> float:
    """One epoch of the head (features, or maps for a tuned top); its mean loss per head."""
    tuned = model.tuned_top is not None
    generator = torch.Generator().manual_seed(options.seed * 1000 + epoch)
    model.head.train()  # a tuned top keeps its batch norm statistics: it stays in eval mode
    members = model.head.members
    # Each head its own batch order; their losses add up, and AdamW updates every parameter
    # on its own, so this is the heads trained apart, in one pass over the epoch.
    orders = [
        torch.randperm(len(train_x), generator=generator).split(options.batch_size) for _ in members
    ]
    losses = []
    batches = tqdm(list(zip(*orders, strict=True)), desc=f"epoch {epoch + 1}", leave=False)
    for member_batches in batches:
        loss = torch.zeros(())
        for member, batch in zip(members, member_batches, strict=True):
            x = train_x[batch]
            features = model.features_from_maps(x.float()) if tuned else x
            loss = loss + criterion(member(features), train_y[batch])
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        losses.append(loss.item() / len(members))
    model.head.eval()
    return float(np.mean(losses))


def reference_recipe(run_dir: Path, data: Path) -> tuple[EffNetTemporal, TrainOptions, dict]:
    """A finished run whose recipe a study trains again on other clips: its model, its options
    with the epoch count its validation chose, and its config (labels, family). A refit chose
    no epoch and saw its validation clips, so it is refused."""
    model, state = load_checkpoint(run_dir)
    if state["options"].get("refit_from"):
        raise ValueError(
            f"{run_dir} is a refit, trained on its validation clips: study its reference"
        )
    options = replace(saved_options(state, data), epochs=state["epoch"] + 1)
    return model, options, state["config"]


def train_heads(
    family: str, options: TrainOptions, x: torch.Tensor, y: torch.Tensor, num_classes: int
) -> EffNetTemporal:
    """Fresh heads of `family` trained on features `x` with `options`' recipe; seed torch first.
    Features of another width than the encoder's (a study's other pooling) get heads that wide."""
    model = build_model(family, num_classes).eval()
    if x.shape[-1] != FEATURE_DIM:
        heads = len(model.head.members)
        model.head = HeadEnsemble(model.head.config, num_classes, heads, x.shape[-1])
    optimiser, criterion = head_optimiser_and_loss(model, options, y, num_classes)
    for epoch in range(options.epochs):
        train_epoch(model, x, y, optimiser, criterion, options, epoch)
    return model


def run_frozen_training(options: TrainOptions) -> dict:
    run_dir, spec, split, labels, cache = start_run(options)
    model = build_model(options.model, len(labels))
    # Inference mode throughout, whether the maps are computed now or loaded from the run folder:
    # the frozen encoder and a tuned top keep their ImageNet batch norm statistics. Only the head
    # switches to training mode, epoch by epoch.
    model.eval()
    tuned = model.tuned_top is not None

    started = time.perf_counter()
    train_set = ClipDataset(split.train, labels, spec, cache, train=True, seed=options.seed)
    val_set = ClipDataset(split.val, labels, spec, cache, train=False)
    train_maps, train_y = _cached_maps(
        model, train_set, TRAIN_VIEWS, run_dir / "train_maps.pt", "train maps"
    )
    if options.refit_from:  # the validation clips, augmented, join the training clips
        refit_set = ClipDataset(split.val, labels, spec, cache, train=True, seed=options.seed + 1)
        refit_maps, refit_y = _cached_maps(
            model, refit_set, TRAIN_VIEWS, run_dir / "val_train_maps.pt", "val maps (refit)"
        )
        train_maps, train_y = torch.cat([train_maps, refit_maps]), torch.cat([train_y, refit_y])
    val_maps, val_y = _cached_maps(model, val_set, 1, run_dir / "val_maps.pt", "val maps")
    # A frozen top gives the same features every epoch: compute them once.
    train_x = train_maps if tuned else features_of_maps(model, train_maps)
    val_x = val_maps if tuned else features_of_maps(model, val_maps)

    optimiser, criterion = head_optimiser_and_loss(model, options, train_y, len(labels))

    best, history, first_epoch = -1.0, [], 0
    train_time_s = time.perf_counter() - started  # computing the maps is part of training
    state = resume_state(run_dir)
    if state is not None:
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        best, history, train_time_s = state["best_metric"], state["history"], state["train_time_s"]
        first_epoch = state["epoch"] + 1
        tqdm.write(f"resumed from {run_dir / LAST} at epoch {first_epoch + 1}")

    for epoch in tqdm(range(first_epoch, options.epochs), desc="epochs", unit="epoch"):
        started = time.perf_counter()
        loss = train_epoch(model, train_x, train_y, optimiser, criterion, options, epoch)
        with torch.no_grad():
            val_logits = model.head(features_of_maps(model, val_x) if tuned else val_x)
            val_top1 = float((val_logits.argmax(1) == val_y).float().mean())
            val_loss = float(nn.functional.cross_entropy(val_logits, val_y))  # of the average
        train_time_s += time.perf_counter() - started
        history.append(
            {
                "epoch": epoch,
                "loss": loss,
                "val_top1": val_top1,
                "val_loss": val_loss,
            }
        )
        tqdm.write(f"epoch {epoch + 1}: loss {loss:.3f}, val top-1 {val_top1:.3f}")
        progress = {
            "epoch": epoch,
            "best_metric": max(best, val_top1),
            "history": history,
            "train_time_s": train_time_s,
        }
        state = checkpoint_state(model, optimiser, options, spec, labels, progress)
        # Ties go to the later epoch, as in the end-to-end loop; a refit trained on the
        # validation clips, so its last epoch is the one kept.
        if val_top1 >= best or options.refit_from:
            best = val_top1
            save_checkpoint(run_dir / BEST, state)
        save_checkpoint(run_dir / LAST, state)
        (run_dir / "history.json").write_text(json.dumps(history, indent=2))
    return evaluate_run(run_dir, options.data, split)
