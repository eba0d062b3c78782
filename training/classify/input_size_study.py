"""Does the frozen encoder see small held objects better at a larger input? Group CV decides.

The default model sees a 224 px centre crop of a 320x240 source; a yo-yo or a bow string is a
few pixels there. ImageNet networks trained with random-resized crops often do better tested at
a somewhat larger input than they were trained at (Touvron et al. 2019, "FixRes"). Held-out
groups are the test, and the validation split (84 clips) is saturated, so candidate sizes are
compared by cross-validation over the training + validation groups: each class's groups dealt
round-robin into folds, the run's recipe (heads, epochs) trained on augmented views of the other
folds, scored on the fold's serving views.

    python -m training input-size-study --run-dir runs/effnet_temporal --data ../shared/data
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from service.video.preprocess import resize_short_side
from training.classify.clip_cache import decode_clip
from training.classify.datasets import ClipDataset
from training.classify.frozen_features import TRAIN_VIEWS, reference_recipe, train_heads
from training.classify.models.registry import get_family
from training.classify.training import prepare_split
from training.classify.ucf101 import ClipRecord

SIZES = (224, 256, 288)
FOLDS = 4
HEAD_SEEDS = (0, 1, 2)


class _OneClipDecoded:
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


def group_folds(records: list[ClipRecord], folds: int) -> np.ndarray:
    """Fold of each clip: each class's groups in sorted order, dealt round-robin."""
    fold_of = {}
    for label in sorted({r.label for r in records}):
        groups = sorted({r.group for r in records if r.label == label})
        fold_of.update({(label, g): i % folds for i, g in enumerate(groups)})
    return np.array([fold_of[(r.label, r.group)] for r in records])


@torch.no_grad()
def _features_at(model, records, labels, spec, size: int, seed: int) -> dict[str, torch.Tensor]:
    """(N, views, T, 1280) augmented and (N, T, 1280) serving features at input `size`."""
    spec = replace(spec, resize_short=size, crop=size)
    decoded = _OneClipDecoded(size)
    augmented_set = ClipDataset(records, labels, spec, decoded, train=True, seed=seed)
    serving_set = ClipDataset(records, labels, spec, decoded, train=False)
    augmented, serving = [], []
    for i in tqdm(range(len(records)), desc=f"features at {size} px", unit="clip"):
        views = torch.stack([augmented_set[i][0] for _ in range(TRAIN_VIEWS)])
        augmented.append(model.frame_features(views).half())
        serving.append(model.frame_features(serving_set[i][0][None])[0].half())
    return {"augmented": torch.stack(augmented), "serving": torch.stack(serving)}


def cross_validate(family, options, features, targets, num_classes, folds, seed) -> np.ndarray:
    """Whether each clip is classified right by heads that never saw its fold."""
    correct = np.zeros(len(targets), bool)
    views = features["augmented"].shape[1]
    seeded = replace(options, seed=seed)
    for fold in range(folds.max() + 1):
        held = torch.from_numpy(folds == fold)
        torch.manual_seed(seed * 100 + fold)
        train_x = features["augmented"][~held].flatten(0, 1).float()
        train_y = targets[~held].repeat_interleave(views)
        model = train_heads(family, seeded, train_x, train_y, num_classes)
        with torch.no_grad():
            predicted = model.head(features["serving"][held].float()).argmax(1)
        correct[held.numpy()] = (predicted == targets[held]).numpy()
    return correct


def input_size_study(run_dir: Path, data: Path, sizes=SIZES, out: Path | None = None) -> dict:
    """CV top-1 of the run's recipe at each input size; features kept per size in `out`."""
    run_dir = Path(run_dir)
    out = Path(out or run_dir / "input_size_study")
    out.mkdir(parents=True, exist_ok=True)
    reference, options, config = reference_recipe(run_dir, data)
    labels, family = config["labels"], config["family"]
    spec = get_family(family).clip_spec
    split = prepare_split(options)
    records = split.train + split.val
    targets = torch.tensor([labels.index(r.label) for r in records])
    folds = group_folds(records, FOLDS)

    result = {"run": str(run_dir), "clips": len(records), "folds": FOLDS, "sizes": {}}
    for size in sizes:
        path = out / f"features_{size}.pt"
        if not path.exists():  # resumable a size at a time
            torch.save(_features_at(reference, records, labels, spec, size, options.seed), path)
        features = torch.load(path, weights_only=True)
        per_seed = {
            seed: cross_validate(family, options, features, targets, len(labels), folds, seed)
            for seed in tqdm(HEAD_SEEDS, desc=f"cross-validation at {size} px", leave=False)
        }
        right = np.mean(list(per_seed.values()), axis=0)  # per clip, over head seeds
        result["sizes"][str(size)] = {
            "cv_top1": round(float(right.mean()), 4),
            "per_seed": {str(s): round(float(c.mean()), 4) for s, c in per_seed.items()},
            "per_class": {
                label: round(float(right[(targets == k).numpy()].mean()), 3)
                for k, label in enumerate(labels)
                if (targets == k).any()
            },
        }
        tqdm.write(f"{size} px: CV top-1 {result['sizes'][str(size)]['cv_top1']:.4f}")
    (out / "input_size_study.json").write_text(json.dumps(result, indent=2))
    return result
