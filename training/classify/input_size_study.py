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

from service.video.preprocess import centre_crop, normalise, resize_short_side, sample_indices
from training.classify.clip_cache import decode_clip
from training.classify.datasets import ClipDataset
from training.classify.frozen_features import TRAIN_VIEWS, reference_recipe, train_heads
from training.classify.models.registry import get_family
from training.classify.training import prepare_split
from training.classify.ucf101 import ClipRecord

SIZES = (224, 256, 288)
FOLDS = 4
HEAD_SEEDS = (0, 1, 2)


class OneClipDecoded:
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
    decoded = OneClipDecoded(size)
    augmented_set = ClipDataset(records, labels, spec, decoded, train=True, seed=seed)
    serving_set = ClipDataset(records, labels, spec, decoded, train=False)
    augmented, serving = [], []
    for i in tqdm(range(len(records)), desc=f"features at {size} px", unit="clip"):
        views = torch.stack([augmented_set[i][0] for _ in range(TRAIN_VIEWS)])
        augmented.append(model.frame_features(views).half())
        serving.append(model.frame_features(serving_set[i][0][None])[0].half())
    return {"augmented": torch.stack(augmented), "serving": torch.stack(serving)}


def cross_validated_log_probs(
    family, options, augmented, candidates, targets, num_classes, folds, seed
) -> dict[str, torch.Tensor]:
    """(N, classes) log-probabilities of each clip by heads that never saw its fold, for each
    candidate way of serving it: `candidates` maps a name to (N, views, T, 1280) features, and
    a clip with several views scores the mean over its views. The heads of a fold are trained
    once, on `augmented` (N, views, T, 1280), and score every candidate."""
    scores = {name: torch.zeros(len(targets), num_classes) for name in candidates}
    views = augmented.shape[1]
    seeded = replace(options, seed=seed)
    for fold in range(folds.max() + 1):
        held = torch.from_numpy(folds == fold)
        torch.manual_seed(seed * 100 + fold)
        train_x = augmented[~held].flatten(0, 1).float()
        train_y = targets[~held].repeat_interleave(views)
        model = train_heads(family, seeded, train_x, train_y, num_classes)
        with torch.no_grad():
            for name, served in candidates.items():
                per_view = [model.head(view.float()) for view in served[held].unbind(1)]
                scores[name][held] = torch.stack(per_view).mean(0)
    return scores


def cv_summary(right: dict[int, np.ndarray], targets: torch.Tensor, labels: list[str]) -> dict:
    """CV top-1 over all clips (mean over head seeds), per seed and per class."""
    mean = np.mean(list(right.values()), axis=0)  # per clip, over head seeds
    return {
        "cv_top1": round(float(mean.mean()), 4),
        "per_seed": {str(s): round(float(c.mean()), 4) for s, c in right.items()},
        "per_class": {
            label: round(float(mean[(targets == k).numpy()].mean()), 3)
            for k, label in enumerate(labels)
            if (targets == k).any()
        },
    }


def study_setup(run_dir: Path, data: Path):
    reference, options, config = reference_recipe(run_dir, data)
    split = prepare_split(options)
    records = split.train + split.val
    targets = torch.tensor([config["labels"].index(r.label) for r in records])
    return reference, options, config, records, targets, group_folds(records, FOLDS)


def input_size_study(run_dir: Path, data: Path, sizes=SIZES, out: Path | None = None) -> dict:
    """CV top-1 of the run's recipe at each input size; features kept per size in `out`."""
    run_dir = Path(run_dir)
    out = Path(out or run_dir / "input_size_study")
    out.mkdir(parents=True, exist_ok=True)
    reference, options, config, records, targets, folds = study_setup(run_dir, data)
    labels, family = config["labels"], config["family"]
    spec = get_family(family).clip_spec

    result = {"run": str(run_dir), "clips": len(records), "folds": FOLDS, "sizes": {}}
    for size in sizes:
        features = _size_features(out, size, reference, records, labels, spec, options.seed)
        right = {}
        for seed in tqdm(HEAD_SEEDS, desc=f"cross-validation at {size} px", leave=False):
            scores = cross_validated_log_probs(
                family,
                options,
                features["augmented"],
                {"centre": features["serving"][:, None]},
                targets,
                len(labels),
                folds,
                seed,
            )
            right[seed] = (scores["centre"].argmax(1) == targets).numpy()
        result["sizes"][str(size)] = cv_summary(right, targets, labels)
        tqdm.write(f"{size} px: CV top-1 {result['sizes'][str(size)]['cv_top1']:.4f}")
    (out / "input_size_study.json").write_text(json.dumps(result, indent=2))
    return result


def _size_features(out: Path, size: int, reference, records, labels, spec, seed: int) -> dict:
    path = out / f"features_{size}.pt"
    if not path.exists():  # resumable a size at a time
        torch.save(_features_at(reference, records, labels, spec, size, seed), path)
    return torch.load(path, weights_only=True)


# Ways to serve a clip: its views, whose log-probabilities are averaged (each (N, T, 1280),
# from the stored serving features), and the encoder's cost for a 320x240 source against the
# shipped 8-frame centre crop.
SERVING_VIEWS = {
    "centre": (lambda f: [f["centre"]], 1.0),
    "centre+mirror": (lambda f: [f["centre"], f["centre_mirror"]], 2.0),
    "full": (lambda f: [f["full"]], 299 / 224),
    "full+mirror": (lambda f: [f["full"], f["full_mirror"]], 2 * 299 / 224),
    "12 frames": (lambda f: [f["centre_12"]], 1.5),
    "16 frames": (lambda f: [f["centre_16"]], 2.0),
    "2 x 8 frames": (lambda f: [f["centre_16"][:, ::2], f["centre_16"][:, 1::2]], 2.0),
}
MORE_FRAMES = (12, 16)


def _sampled_frames(decoded: np.ndarray, spec, count: int) -> np.ndarray:
    """(count, H, W, 3) frames sampled as the service samples them, short side resized."""
    indices = sample_indices(len(decoded), count)
    return np.stack([resize_short_side(decoded[i], spec.resize_short) for i in indices])


@torch.no_grad()
def _serving_view_features(model, records, spec) -> dict[str, torch.Tensor]:
    """(N, T, 1280) features of each clip's centre crop, whole frame, and their mirrors."""
    views = {"centre": [], "centre_mirror": [], "full": [], "full_mirror": []}
    for record in tqdm(records, desc="serving views", unit="clip"):
        frames = _sampled_frames(decode_clip(record), spec, spec.frames)
        crops = {"centre": centre_crop(frames, spec.crop), "full": frames}
        for name, crop in crops.items():
            for view, pixels in ((name, crop), (f"{name}_mirror", crop[:, :, ::-1])):
                clip = torch.from_numpy(normalise(pixels, spec))[None]
                views[view].append(model.frame_features(clip)[0].half())
    return {name: torch.stack(features) for name, features in views.items()}


@torch.no_grad()
def _more_frames_features(model, records, spec) -> dict[str, torch.Tensor]:
    """(N, T, 1280) features of each clip's centre crop at each of MORE_FRAMES frame counts."""
    views = {f"centre_{count}": [] for count in MORE_FRAMES}
    for record in tqdm(records, desc="more frames", unit="clip"):
        decoded = decode_clip(record)
        for count in MORE_FRAMES:
            frames = centre_crop(_sampled_frames(decoded, spec, count), spec.crop)
            clip = torch.from_numpy(normalise(frames, spec))[None]
            views[f"centre_{count}"].append(model.frame_features(clip)[0].half())
    return {name: torch.stack(features) for name, features in views.items()}


def _cached(path: Path, compute) -> dict[str, torch.Tensor]:
    if not path.exists():
        torch.save(compute(), path)
    return torch.load(path, weights_only=True)


def serving_view_study(run_dir: Path, data: Path, out: Path | None = None) -> dict:
    """CV top-1 of the run's recipe, trained as shipped, served on other views of each clip:
    its mirror, the whole frame rather than the centre crop, more frames. Reuses the 224 px
    features of `input_size_study` (computed here if missing)."""
    run_dir = Path(run_dir)
    out = Path(out or run_dir / "input_size_study")
    out.mkdir(parents=True, exist_ok=True)
    reference, options, config, records, targets, folds = study_setup(run_dir, data)
    labels, family = config["labels"], config["family"]
    spec = get_family(family).clip_spec
    augmented = _size_features(out, spec.crop, reference, records, labels, spec, options.seed)
    served = {
        **_cached(
            out / f"serving_views_{spec.crop}.pt",
            lambda: _serving_view_features(reference, records, spec),
        ),
        **_cached(
            out / f"serving_frames_{spec.crop}.pt",
            lambda: _more_frames_features(reference, records, spec),
        ),
    }
    candidates = {name: torch.stack(views(served), 1) for name, (views, _) in SERVING_VIEWS.items()}
    right: dict[str, dict[int, np.ndarray]] = {name: {} for name in candidates}
    for seed in tqdm(HEAD_SEEDS, desc="cross-validation", leave=False):
        scores = cross_validated_log_probs(
            family, options, augmented["augmented"], candidates, targets, len(labels), folds, seed
        )
        for name, log_probs in scores.items():
            right[name][seed] = (log_probs.argmax(1) == targets).numpy()
    result = {"run": str(run_dir), "clips": len(records), "folds": FOLDS, "views": {}}
    for name, (_, cost) in SERVING_VIEWS.items():
        result["views"][name] = {
            **cv_summary(right[name], targets, labels),
            "encoder_cost": round(cost, 2),
        }
        tqdm.write(f"{name}: CV top-1 {result['views'][name]['cv_top1']:.4f}")
    (out / "serving_view_study.json").write_text(json.dumps(result, indent=2))
    return result
