"""Train and evaluate a clip classifier: resumable, seeded, with tqdm progress and JSON metrics.

A run directory holds `options.json`, `last.pt` / `best.pt` checkpoints (model + optimiser +
scheduler + config + epoch + best metric), `history.json` and, after evaluation, `metrics.json`.

    run_training(TrainOptions("r2plus1d", data=Path("../shared/data"), run_dir=Path("runs/r2")))
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, WeightedRandomSampler
from tqdm import tqdm

from service.video.preprocess import ClipSpec
from training.classify.clip_cache import ClipCache
from training.classify.datasets import ClipDataset
from training.classify.models.registry import build_model, get_family
from training.classify.ucf101 import Split, discover_clips, split_by_group
from training.runs import options_json, prepare_run_dir


@dataclass
class TrainOptions:
    model: str
    data: Path
    run_dir: Path
    classes: list[str] | None = None
    epochs: int = 30
    batch_size: int = 8
    lr: float = 3e-3
    weight_decay: float = 5e-2
    label_smoothing: float = 0.1
    mixup_alpha: float = 0.2  # 0 turns mixup off
    balance_classes: bool = True  # sample clips so each class is seen equally often
    seed: int = 0
    device: str = "cpu"
    threads: int = 0  # 0: torch's default
    cache_dir: Path = Path(".cache/clips")
    max_train_clips: int = 0  # > 0 only for smoke runs
    teacher_run: str = ""  # a trained run whose predictions the model also learns (distillation)
    distill_weight: float = 0.5  # share of the loss that matches the teacher, with a teacher
    distill_temperature: float = 4.0
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return options_json(self)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def prepare_split(options: TrainOptions) -> Split:
    split = split_by_group(discover_clips(options.data, options.classes))
    if options.max_train_clips:
        rng = random.Random(options.seed)
        pick = lambda clips: rng.sample(clips, min(len(clips), options.max_train_clips))  # noqa: E731
        split = Split(pick(split.train), pick(split.val), pick(split.test), split.method)
    return split


@torch.no_grad()
def predict(model: nn.Module, loader: DataLoader, device: str) -> tuple[np.ndarray, np.ndarray]:
    """Logits and targets over a loader, in order."""
    model.eval()
    logits, targets = [], []
    for x, y in loader:
        logits.append(model(x.to(device)).float().cpu())
        targets.append(y)
    return torch.cat(logits).numpy(), torch.cat(targets).numpy()


def accuracy_report(logits: np.ndarray, targets: np.ndarray, labels: list[str]) -> dict:
    predicted = logits.argmax(1)
    confusion = np.zeros((len(labels), len(labels)), dtype=int)
    for t, p in zip(targets, predicted, strict=True):
        confusion[t, p] += 1
    per_class = {
        label: float(confusion[i, i] / confusion[i].sum()) if confusion[i].sum() else None
        for i, label in enumerate(labels)
    }
    return {
        "top1": float((predicted == targets).mean()) if len(targets) else 0.0,
        "per_class": per_class,
        "clips": int(len(targets)),
        "confusion_matrix": confusion.tolist(),
    }


def _loader(dataset: ClipDataset, batch_size: int, shuffle: bool) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=0)


def _balanced_loader(dataset: ClipDataset, batch_size: int, seed: int) -> DataLoader:
    """Draw clips with probability inversely proportional to their class size."""
    counts = np.bincount(dataset.targets)
    weights = torch.tensor([1.0 / counts[t] for t in dataset.targets], dtype=torch.double)
    sampler = WeightedRandomSampler(
        weights, len(dataset), replacement=True, generator=torch.Generator().manual_seed(seed)
    )
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=0)


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

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        return (*self.dataset[i], i)


@torch.no_grad()
def teacher_soft_targets(teacher_run: Path, split: Split, temperature: float) -> torch.Tensor:
    """The teacher run's temperature-softened probabilities for each training clip, (N, K)."""
    teacher, state = load_checkpoint(teacher_run)
    spec = get_family(state["config"]["family"]).clip_spec
    cache = ClipCache(Path(state["options"]["cache_dir"]), spec.resize_short)
    cache.warm(split.train)
    clips = ClipDataset(split.train, state["config"]["labels"], spec, cache, False)
    logits, _ = predict(teacher, _loader(clips, 8, False), "cpu")
    return torch.softmax(torch.from_numpy(logits).float() / temperature, dim=1)


def _with_teacher(
    loss: torch.Tensor, logits: torch.Tensor, soft: torch.Tensor, options: TrainOptions
) -> torch.Tensor:
    """Hinton et al.'s distillation: the labels' loss blended with KL to the teacher at T."""
    t = options.distill_temperature
    log_p = nn.functional.log_softmax(logits / t, dim=1)
    kd = nn.functional.kl_div(log_p, soft, reduction="batchmean") * t * t
    return (1 - options.distill_weight) * loss + options.distill_weight * kd


def save_checkpoint(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)  # an interrupted save never corrupts the checkpoint a resume reads


class RunSetup(NamedTuple):
    run_dir: Path
    spec: ClipSpec
    split: Split
    labels: list[str]
    cache: ClipCache


def start_run(options: TrainOptions) -> RunSetup:
    """What every training loop does first: seed, threads, run folder with options.json, the
    split, and every clip decoded into the cache."""
    seed_everything(options.seed)
    run_dir = prepare_run_dir(options)
    spec = get_family(options.model).clip_spec
    split = prepare_split(options)
    cache = ClipCache(options.cache_dir, spec.resize_short)
    cache.warm(split.train + split.val + split.test)
    return RunSetup(run_dir, spec, split, split.labels, cache)


def run_training(options: TrainOptions) -> dict:
    """Train (resuming from `run_dir/last.pt` when present) and return the final test metrics."""
    run_dir, spec, split, labels, cache = start_run(options)
    train_set = _Indexed(
        ClipDataset(split.train, labels, spec, cache, train=True, seed=options.seed)
    )
    soft_targets = None
    if options.teacher_run:
        soft_targets = teacher_soft_targets(
            Path(options.teacher_run), split, options.distill_temperature
        )
    if options.balance_classes:
        train_loader = _balanced_loader(train_set, options.batch_size, options.seed)
    else:
        train_loader = _loader(train_set, options.batch_size, shuffle=True)
    val_loader = _loader(ClipDataset(split.val, labels, spec, cache, False), 8, False)

    model = build_model(options.model, len(labels)).to(options.device)
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=options.lr, weight_decay=options.weight_decay
    )
    criterion = nn.CrossEntropyLoss(label_smoothing=options.label_smoothing)
    start_epoch, best, history, elapsed = 0, -1.0, [], 0.0

    last_path = run_dir / "last.pt"
    if last_path.exists():
        state = torch.load(last_path, map_location=options.device, weights_only=False)
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        start_epoch, best = state["epoch"] + 1, state["best_metric"]
        history, elapsed = state["history"], state["training_time_s"]
        tqdm.write(f"resumed from {last_path} at epoch {start_epoch}")

    # The schedule is a function of (step, total steps), rebuilt on resume, so a run can also be
    # resumed with more epochs than it started with.
    steps_done = start_epoch * len(train_loader)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimiser,
        max_lr=options.lr,
        total_steps=max(1, options.epochs * len(train_loader)),
        pct_start=0.15,
        last_epoch=steps_done - 1,
    )

    for epoch in range(start_epoch, options.epochs):
        started = time.perf_counter()
        model.train()
        losses = []
        progress = tqdm(train_loader, desc=f"epoch {epoch + 1}/{options.epochs}", unit="batch")
        for x, y, index in progress:
            soft = None if soft_targets is None else soft_targets[index]
            x, targets, soft = _mixup(x, y, options.mixup_alpha, len(labels), soft)
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
        val = accuracy_report(*predict(model, val_loader, options.device), labels)
        elapsed += time.perf_counter() - started
        history.append({"epoch": epoch, "loss": float(np.mean(losses)), "val_top1": val["top1"]})
        tqdm.write(f"epoch {epoch + 1}: loss {np.mean(losses):.3f}, val top-1 {val['top1']:.3f}")
        state = {
            "model": model.state_dict(),
            "optimiser": optimiser.state_dict(),
            "config": {"family": options.model, "labels": labels, "clip_spec": spec.to_manifest()},
            "options": options.to_json(),
            "epoch": epoch,
            "best_metric": max(best, val["top1"]),
            "history": history,
            "training_time_s": elapsed,
        }
        # Ties go to the later epoch: the model has trained longer at a lower learning rate.
        if val["top1"] >= best:
            best = val["top1"]
            save_checkpoint(run_dir / "best.pt", state)
        save_checkpoint(last_path, state)
        (run_dir / "history.json").write_text(json.dumps(history, indent=2))

    return evaluate_run(run_dir, options.data, split)


def load_checkpoint(run_dir: Path, which: str = "best") -> tuple[nn.Module, dict]:
    state = torch.load(Path(run_dir) / f"{which}.pt", map_location="cpu", weights_only=False)
    model = build_model(state["config"]["family"], len(state["config"]["labels"]))
    model.load_state_dict(state["model"])
    return model.eval(), state


def evaluate_run(run_dir: Path, data: Path, split: Split | None = None) -> dict:
    """Held-out test metrics of the best checkpoint, written to `run_dir/metrics.json`."""
    model, state = load_checkpoint(run_dir)
    options = state["options"]
    labels = state["config"]["labels"]
    if split is None:
        split = prepare_split(
            TrainOptions(
                model=options["model"],
                data=Path(data),
                run_dir=Path(run_dir),
                classes=options["classes"],
                seed=options["seed"],
                max_train_clips=options["max_train_clips"],
            )
        )
    spec = get_family(state["config"]["family"]).clip_spec
    cache = ClipCache(Path(options["cache_dir"]), spec.resize_short)
    test_loader = _loader(ClipDataset(split.test, labels, spec, cache, False), 8, False)
    report = accuracy_report(*predict(model, test_loader, "cpu"), labels)
    last_path = Path(run_dir) / "last.pt"
    if last_path.exists():  # the whole run's time, not only up to the best epoch
        state_time = torch.load(last_path, map_location="cpu", weights_only=False)
        training_time_s = state_time["training_time_s"]
    else:
        training_time_s = state["training_time_s"]
    metrics = {
        **report,
        "labels": labels,
        "params": sum(p.numel() for p in model.parameters()),
        "training_time_s": round(training_time_s, 1),
        "best_val_top1": state["best_metric"],
        "best_epoch": state["epoch"],
        "split": split.method,
        "train_clips": len(split.train),
        "val_clips": len(split.val),
        "test_groups": sorted({c.group for c in split.test}),
    }
    (Path(run_dir) / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics
