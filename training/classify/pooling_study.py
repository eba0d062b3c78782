"""Does pooling the frozen encoder's last map otherwise keep small objects? Group CV decides.

EfficientNet-Lite0 averages its last 7x7 map over space, so a yo-yo or a bow is diluted by the
background around it. Max pooling over space keeps the strongest position of each channel, and
the ImageNet classifier applied at each position, max-pooled, keeps its 'yo-yo' and 'bow' logits
where they fire. Each costs nothing at serving (the same maps). Compared as the input-size study
compares sizes: the run's recipe trained on the same augmented views, by 4-fold group CV over the
training + validation clips, heads trained for each pooling.

    python -m training pooling-study --run-dir runs/effnet_temporal --data ../shared/data
    python -m training pooling-study ... --input-size 288   # the poolings at a larger input
    python -m training pooling-study ... --poolings gem      # heads for some poolings only

Features of every pooling are computed together and cached; heads are trained for the poolings
asked, and their figures merged into the study's JSON beside any an earlier call wrote.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import torch
from tqdm import tqdm

from training.classify.group_cv import (
    FOLDS,
    augmented_and_serving_features,
    cross_validated_log_probs,
    cv_summary,
    heads_averaged,
    study_setup,
)
from training.classify.models.effnet_temporal import TUNABLE_FROM_BLOCK, EffNetTemporal

POOLINGS = ("avg", "max", "avg+max", "avg+logit-max", "gem")
GEM_POWER = 3.0  # generalised mean (Radenovic et al. 2018): between the mean (1) and the max
MEAN_AND_MAX_HEADS = "avg | max heads"


@torch.no_grad()
def pooled_frame_features(model: EffNetTemporal, clips: torch.Tensor) -> dict[str, torch.Tensor]:
    """(B, 3, T, H, W) -> each pooling's (B, T, D) per-frame features of the ImageNet top."""
    encoder = model.encoder
    maps = model.frame_maps(clips)  # (B, T, C, h, w)
    batch, frames = maps.shape[:2]
    activations = encoder.top_activations(
        maps.flatten(0, 1), TUNABLE_FROM_BLOCK
    )  # (B*T, 1280, h, w)
    mean, peak = activations.mean((2, 3)), activations.amax((2, 3))
    logits = encoder._fc(activations.flatten(2).transpose(1, 2))  # (B*T, h*w, 1000)
    pooled = {
        "avg": mean,
        "max": peak,
        "avg+max": torch.cat([mean, peak], 1),
        "avg+logit-max": torch.cat([mean, logits.amax(1)], 1),
        "gem": activations.clamp(min=1e-6).pow(GEM_POWER).mean((2, 3)).pow(1 / GEM_POWER),
    }
    return {name: f.reshape(batch, frames, -1) for name, f in pooled.items()}


def pooling_study(
    run_dir: Path,
    data: Path,
    out: Path | None = None,
    input_size: int | None = None,
    poolings: tuple[str, ...] = POOLINGS,
) -> dict:
    """CV top-1 of the run's recipe on each of `poolings` of the encoder's last map, at the
    run's input size or at `input_size` (short side and crop, training and serving views alike).
    The heads on the mean and on the max, averaged, come with them when both are asked."""
    unknown = set(poolings) - set(POOLINGS)
    if unknown:
        raise ValueError(f"unknown poolings {sorted(unknown)}: choose among {POOLINGS}")
    run_dir = Path(run_dir)
    out = Path(out or run_dir / "pooling_study")
    out.mkdir(parents=True, exist_ok=True)
    study = study_setup(run_dir, data)
    size = input_size or study.spec.crop
    suffix = "" if size == study.spec.crop else f"_{size}"
    path = out / f"pooled_features{suffix}.pt"
    features = torch.load(path, weights_only=True) if path.exists() else {}
    if set(features) != set(POOLINGS):  # none stored, or by a study with fewer poolings
        featurize = partial(pooled_frame_features, study.reference)
        features = augmented_and_serving_features(study, featurize, size)
        torch.save(features, path)

    log_probs = {
        name: cross_validated_log_probs(
            study, pooled["augmented"], {name: pooled["serving"][:, None]}
        )[name]
        for name, pooled in features.items()
        if name in poolings
    }
    widths = {name: features[name]["serving"].shape[-1] for name in log_probs}
    if {"avg", "max"} <= set(poolings):
        # The heads trained on the mean and those trained on the max, averaged: same maps.
        log_probs[MEAN_AND_MAX_HEADS] = heads_averaged(log_probs["avg"], log_probs["max"])
        widths[MEAN_AND_MAX_HEADS] = widths["avg"]

    result_path = out / f"pooling_study{suffix}.json"
    earlier = json.loads(result_path.read_text())["poolings"] if result_path.exists() else {}
    result = {
        "run": str(run_dir),
        "clips": len(study.records),
        "folds": FOLDS,
        "input_size": size,
        "poolings": earlier,
    }
    for name, per_seed in log_probs.items():
        result["poolings"][name] = {**cv_summary(per_seed, study), "features": widths[name]}
        tqdm.write(f"{name}: CV top-1 {result['poolings'][name]['cv_top1']:.4f}")
    result_path.write_text(json.dumps(result, indent=2))
    return result


def mean_pooled_features(run_dir: Path) -> dict[str, torch.Tensor]:
    """The run's own features (its input size, the encoder's mean pooling) as the pooling study
    stored them: what other studies compare their candidate with."""
    path = Path(run_dir) / "pooling_study" / "pooled_features.pt"
    if not path.exists():
        raise FileNotFoundError(
            f"{path} missing: run `python -m training pooling-study --run-dir {run_dir}"
            " --poolings avg` first (the encoder's features at the run's own size)"
        )
    return torch.load(path, weights_only=True, mmap=True)["avg"]
