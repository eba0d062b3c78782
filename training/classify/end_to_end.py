"""Train a clip classifier end to end (every layer learns): the loop for families from scratch.

Class-balanced sampling, mixup, one-cycle learning rate, optional distillation from a teacher
run; resumable from `last.pt`, the best validation epoch kept as `best.pt`.

    metrics = run_training(TrainOptions("r2plus1d", data=Path("../shared/data"), run_dir=...))
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, WeightedRandomSampler
from tqdm import tqdm

from training.checkpoints import BEST, LAST, resume_state, save_checkpoint
from training.classify.clip_cache import ClipCache
from training.classify.datasets import ClipDataset, augmenting_loader
from training.classify.models.registry import build_model
from training.classify.training import (
    RunSetup,
    TrainOptions,
    accuracy_report,
    checkpoint_state,
    eval_loader,
    evaluate_run,
    load_checkpoint,
    predict,
    start_run,
    trained_clip_spec,
)
from training.classify.ucf101 import Split


def _balanced_sampler(dataset: ClipDataset, seed: int) -> WeightedRandomSampler:
    """Draw clips with probability inversely proportional to their class size."""
    counts = np.bincount(dataset.targets)
    weights = torch.tensor([1.0 / counts[t] for t in dataset.targets], dtype=torch.double)
    return WeightedRandomSampler(
        weights, len(dataset), replacement=True, generator=torch.Generator().manual_seed(seed)
    )


def _mixup(
    x: torch.Tensor, y: torch.Tensor, alpha: float, classes: int, soft: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Blend each clip with another of the batch; targets (and the teacher's soft targets, when
    given) become the same blend."""
    targets = nn.functional.one_hot(y, classes).float()
    if alpha <= 0 or len(x) < 2:
        return x, targets, soft
    lam = float(np.random.beta(alpha, alpha))
    order = torch.randperm(len(x))
    blend = lambda t: None if t is None else lam * t + (1 - lam) * t[order]  # noqa: E731
    return blend(x), blend(targets), blend(soft)


class _Indexed(torch.utils.data.Dataset):
    """A dataset's items with their index, to look up per-clip teacher targets."""

    def __init__(self, dataset: ClipDataset) -> None:
        self.dataset = dataset
        self.targets = dataset.targets
        self.rng = dataset.rng  # the same generator: a loader worker seeds it through here

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        return (*self.dataset[i], i)


@torch.no_grad()
def teacher_soft_targets(teacher_run: Path, split: Split, temperature: float) -> torch.Tensor:
    """The teacher run's temperature-softened probabilities for each training clip, (N, K)."""
    teacher, state = load_checkpoint(teacher_run)
    spec = trained_clip_spec(state["config"])
    cache = ClipCache(Path(state["options"]["cache_dir"]), spec.resize_short)
    cache.warm(split.train)
    clips = ClipDataset(split.train, state["config"]["labels"], spec, cache, False)
    logits, _ = predict(teacher, eval_loader(clips), "cpu")
    return torch.softmax(torch.from_numpy(logits).float() / temperature, dim=1)


def _with_teacher(
    loss: torch.Tensor, logits: torch.Tensor, soft: torch.Tensor, options: TrainOptions
) -> torch.Tensor:
    """Hinton et al.'s distillation: the labels' loss blended with KL to the teacher at T."""
    t = options.distill_temperature
    log_p = nn.functional.log_softmax(logits / t, dim=1)
    kd = nn.functional.kl_div(log_p, soft, reduction="batchmean") * t * t
    return (1 - options.distill_weight) * loss + options.distill_weight * kd


@dataclass
class _Progress:
    """Where a run stands; saved in every checkpoint, restored on resume."""

    epoch: int = -1  # the last epoch trained
    best_metric: float = -1.0
    history: list[dict] = field(default_factory=list)
    train_time_s: float = 0.0


def _resume(model: nn.Module, optimiser: torch.optim.Optimizer, options: TrainOptions) -> _Progress:
    state = resume_state(options.run_dir, options.device)
    if state is None:
        return _Progress()
    model.load_state_dict(state["model"])
    optimiser.load_state_dict(state["optimiser"])
    tqdm.write(f"resumed from {options.run_dir / LAST} at epoch {state['epoch'] + 1}")
    return _Progress(state["epoch"], state["best_metric"], state["history"], state["train_time_s"])


def _train_loader(setup: RunSetup, options: TrainOptions) -> DataLoader:
    dataset = _Indexed(
        ClipDataset(setup.split.train, setup.labels, setup.spec, setup.cache, True, options.seed)
    )
    sampler = _balanced_sampler(dataset, options.seed) if options.balance_classes else None
    return augmenting_loader(dataset, options.batch_size, options.loader_workers, sampler)


def _train_epoch(
    model: nn.Module,
    loader: DataLoader,
    optimiser: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    soft_targets: torch.Tensor | None,
    options: TrainOptions,
    epoch: int,
    classes: int,
) -> float:
    """One pass over the training clips; returns the mean loss."""
    model.train()
    criterion = nn.CrossEntropyLoss(label_smoothing=options.label_smoothing)
    losses = []
    progress = tqdm(loader, desc=f"epoch {epoch + 1}/{options.epochs}", unit="batch")
    for x, y, index in progress:
        soft = None if soft_targets is None else soft_targets[index]
        x, targets, soft = _mixup(x, y, options.mixup_alpha, classes, soft)
        logits = model(x.to(options.device))
        loss = criterion(logits, targets.to(options.device))
        if soft is not None:
            loss = _with_teacher(loss, logits, soft.to(options.device), options)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        scheduler.step()
        losses.append(loss.item())
        progress.set_postfix(loss=f"{np.mean(losses):.3f}")
    return float(np.mean(losses))


def _save_epoch(
    model: nn.Module,
    optimiser: torch.optim.Optimizer,
    setup: RunSetup,
    options: TrainOptions,
    progress: _Progress,
    val_top1: float,
) -> None:
    """last.pt every epoch; best.pt when validation is at least as good (ties go to the later
    epoch: it has trained longer at a lower learning rate)."""
    is_best = val_top1 >= progress.best_metric
    progress.best_metric = max(progress.best_metric, val_top1)
    state = checkpoint_state(
        model,
        optimiser,
        options,
        setup.spec,
        setup.labels,
        {
            "epoch": progress.epoch,
            "best_metric": progress.best_metric,
            "history": progress.history,
            "train_time_s": progress.train_time_s,
        },
    )
    if is_best:
        save_checkpoint(setup.run_dir / BEST, state)
    save_checkpoint(setup.run_dir / LAST, state)
    (setup.run_dir / "history.json").write_text(json.dumps(progress.history, indent=2))


def run_training(options: TrainOptions) -> dict:
    """Train (resuming from `run_dir/last.pt` when present) and return the final test metrics."""
    setup = start_run(options)
    loader = _train_loader(setup, options)
    val_loader = eval_loader(
        ClipDataset(setup.split.val, setup.labels, setup.spec, setup.cache, False)
    )
    soft_targets = None
    if options.teacher_run:
        soft_targets = teacher_soft_targets(
            Path(options.teacher_run), setup.split, options.distill_temperature
        )
    model = build_model(options.model, len(setup.labels)).to(options.device)
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=options.lr, weight_decay=options.weight_decay
    )
    progress = _resume(model, optimiser, options)
    # The schedule is a function of (step, total steps), rebuilt on resume, so a run can also be
    # resumed with more epochs than it started with.
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimiser,
        max_lr=options.lr,
        total_steps=max(1, options.epochs * len(loader)),
        pct_start=0.15,
        last_epoch=(progress.epoch + 1) * len(loader) - 1,
    )
    classes = len(setup.labels)
    for epoch in range(progress.epoch + 1, options.epochs):
        started = time.perf_counter()
        loss = _train_epoch(
            model, loader, optimiser, scheduler, soft_targets, options, epoch, classes
        )
        val = accuracy_report(*predict(model, val_loader, options.device), setup.labels)
        val_top1 = val["top1"]
        progress.epoch = epoch
        progress.train_time_s += time.perf_counter() - started
        progress.history.append({"epoch": epoch, "loss": loss, "val_top1": val_top1})
        tqdm.write(f"epoch {epoch + 1}: loss {loss:.3f}, val top-1 {val_top1:.3f}")
        _save_epoch(model, optimiser, setup, options, progress, val_top1)
    if not setup.split.test:  # a packed copy (training.classify.pack) holds no held-out clips
        return {"best_val_top1": progress.best_metric, "held_out": "none in this data root"}
    return evaluate_run(setup.run_dir, options.data, setup.split)
