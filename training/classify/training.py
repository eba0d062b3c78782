"""What every classifier training loop shares: options, the split, the run set-up, evaluation.

A run directory holds `options.json`, `last.pt` / `best.pt` checkpoints (training.checkpoints),
`history.json` and, after evaluation, `metrics.json`. The loops are `end_to_end` and
`frozen_features`; `loops.train` picks one by the model family.

    setup = start_run(options)
    metrics = evaluate_run(run_dir, data)
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from service.video.preprocess import ClipSpec
from training.checkpoints import load_state, resume_state
from training.classify.clip_cache import ClipCache
from training.classify.datasets import ClipDataset
from training.classify.models.registry import build_model, get_family
from training.classify.ucf101 import Split, discover_clips, split_by_group
from training.options import options_from_json, options_json
from training.runs import prepare_run_dir


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
    # Processes that decode and augment training clips beside the training loop: 0 on a 2-core
    # machine, a few per GPU run so that the GPU is not waiting for clips.
    loader_workers: int = 0
    cache_dir: Path = Path(".cache/clips")
    max_train_clips: int = 0  # > 0 only for smoke runs
    teacher_run: str = ""  # a trained run whose predictions the model also learns (distillation)
    distill_weight: float = 0.5  # share of the loss that matches the teacher, with a teacher
    distill_temperature: float = 4.0
    # A finished run (frozen-feature families) whose recipe is trained again on the training and
    # validation groups together, the last epoch kept: more groups to learn from, nothing left
    # to choose an epoch on (`python -m training train` sets `epochs` to the count that run's
    # validation chose).
    refit_from: str = ""
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return options_json(self)


def saved_options(state: dict, data: Path) -> TrainOptions:
    """The options a checkpoint was trained with, its data root replaced by `data`."""
    return options_from_json(TrainOptions, state["options"], data=Path(data))


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


def eval_loader(dataset: ClipDataset, batch_size: int = 8) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)


def checkpoint_state(
    model: nn.Module,
    optimiser: torch.optim.Optimizer | None,
    options: TrainOptions,
    spec: ClipSpec,
    labels: list[str],
    progress: dict,
) -> dict:
    """A classifier checkpoint in the one format (training.checkpoints); `progress` holds
    epoch, best_metric, history and train_time_s. No optimiser: a run that resumes from its
    cached features rather than from an epoch."""
    return {
        "model": model.state_dict(),
        "optimiser": optimiser.state_dict() if optimiser else {},
        "config": {"family": options.model, "labels": labels, "clip_spec": spec.to_manifest()},
        "options": options.to_json(),
        **progress,
    }


def trained_clip_spec(config: dict) -> ClipSpec:
    """The input a run was trained on, from its checkpoint's config: a family's spec may change
    later (a new input size), and an older run must still be fed what it learnt from."""
    if "clip_spec" in config:
        return ClipSpec.from_manifest(config["clip_spec"])
    return get_family(config["family"]).clip_spec  # checkpoints from before it was recorded


def load_checkpoint(run_dir: Path, which: str = "best") -> tuple[nn.Module, dict]:
    """The run's model (evaluation mode) and its checkpoint state."""
    state = load_state(Path(run_dir) / f"{which}.pt")
    model = build_model(state["config"]["family"], len(state["config"]["labels"]))
    model.load_state_dict(state["model"])
    return model.eval(), state


def evaluate_run(
    run_dir: Path, data: Path, split: Split | None = None, train_clips: int | None = None
) -> dict:
    """Held-out test metrics of the best checkpoint, written to `run_dir/metrics.json`;
    `train_clips` where the run trained on others than its split's training (+ a refit's
    validation) clips."""
    model, state = load_checkpoint(run_dir)
    options = state["options"]
    labels = state["config"]["labels"]
    if split is None:
        split = prepare_split(saved_options(state, data))
    spec = trained_clip_spec(state["config"])
    cache = ClipCache(Path(options["cache_dir"]), spec.resize_short)
    test_loader = eval_loader(ClipDataset(split.test, labels, spec, cache, False))
    report = accuracy_report(*predict(model, test_loader, "cpu"), labels)
    last = resume_state(Path(run_dir))  # the whole run's time, not only up to the best epoch
    training_time_s = (last or state)["train_time_s"]
    if options.get("refit_from"):  # a refit is the reference run's training and then its own
        reference = json.loads((Path(options["refit_from"]) / "metrics.json").read_text())
        training_time_s += reference["training_time_s"]
    metrics = {
        **report,
        "labels": labels,
        "params": sum(p.numel() for p in model.parameters()),
        "training_time_s": round(training_time_s, 1),
        "best_val_top1": state["best_metric"],
        "best_epoch": state["epoch"],
        "split": split.method,
        "train_clips": train_clips
        or len(split.train) + (len(split.val) if options.get("refit_from") else 0),
        "val_clips": len(split.val),
        "test_groups": sorted({c.group for c in split.test}),
    }
    (Path(run_dir) / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics
