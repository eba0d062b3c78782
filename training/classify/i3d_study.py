"""Would a video-pretrained encoder see the actions better? Group CV decides.

Every study of the default so far changed what the frozen ImageNet EfficientNet-Lite0 is shown
(input size, views, poolings, a flow stream) or swapped it for a larger ImageNet network; none
gained the 1.5 points the rules ask. I3D saw Kinetics-400 actions rather than photos. This
compares the two encoders under the shipped recipe (six augmented views a clip, five attention
heads, the epochs and seed the shipped model's manifest entry records) by the same group CV as
the other studies: heads trained on three folds of the training + validation clips and scored
on the fourth, three head seeds.

    python -m training i3d-study --data ../shared/data --out runs/i3d_study

Both encoders' features are computed here, in one run, on the same clips (cached in `out`, as
are the cross-validated log-probabilities: a rerun scores without training).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import torch
from tqdm import tqdm

from service.contract.manifest import load_manifest_content
from training.classify.group_cv import (
    FOLDS,
    Study,
    augmented_and_serving_features,
    cached,
    cv_summary,
    group_folds,
    served_cv_log_probs,
)
from training.classify.models.i3d_temporal import i3d_temporal
from training.classify.models.registry import build_model, get_family
from training.classify.training import TrainOptions, prepare_split

SHIPPED = "effnet_temporal"
CANDIDATE = "i3d_temporal"


def recipe_study(data: Path, models_dir: Path, name: str, max_clips: int = 0) -> Study:
    """The exported classifier `name`'s recipe (its family's settings, the epochs and seed its
    manifest entry records), its model as `reference`, and the training + validation clips it is
    cross-validated on (`max_clips` of each split, for a smoke run)."""
    (entry,) = [c for c in load_manifest_content(models_dir).classifiers if c.name == name]
    family = get_family(entry.family)
    options = TrainOptions(
        model=entry.family,
        data=Path(data),
        run_dir=Path("unused"),
        epochs=entry.training["epochs"],
        lr=family.lr,
        batch_size=family.batch_size,
        seed=entry.training["seed"],
        max_train_clips=max_clips,
    )
    split = prepare_split(options)
    records = split.train + split.val
    labels = list(entry.labels)
    return Study(
        reference=build_model(entry.family, len(labels)).eval(),
        options=options,
        labels=labels,
        family=entry.family,
        spec=entry.input.clip_spec(),
        records=records,
        targets=torch.tensor([labels.index(r.label) for r in records]),
        folds=group_folds(records, FOLDS),
    )


def i3d_study(
    data: Path, out: Path, models_dir: Path = Path("exported_models"), max_clips: int = 0
) -> dict:
    """CV top-1 of the shipped recipe on Lite0's and on I3D's features; cached in `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    study = recipe_study(data, models_dir, SHIPPED, max_clips)
    lite0 = study.reference
    i3d = i3d_temporal(len(study.labels)).eval()
    i3d_arm = replace(study, spec=get_family(CANDIDATE).clip_spec)
    size = study.spec.crop
    features = {  # I3D first: the longer computation, cached on its own for a resumed run
        "i3d": cached(
            out / "features_i3d.pt",
            lambda: augmented_and_serving_features(
                i3d_arm, lambda clips: {"f": i3d.frame_features(clips)}, size
            )["f"],
        ),
        "lite0": cached(
            out / "features_lite0.pt",
            lambda: augmented_and_serving_features(
                study, lambda clips: {"f": lite0.frame_features(clips)}, size
            )["f"],
        ),
    }
    log_probs = {
        name: served_cv_log_probs(study, f, out / f"log_probs_{name}.pt")
        for name, f in features.items()
    }
    result = {
        "clips": len(study.records),
        "folds": FOLDS,
        "recipe": {"epochs": study.options.epochs, "seed": study.options.seed},
        "encoders": {name: cv_summary(scores, study) for name, scores in log_probs.items()},
    }
    for name, summary in result["encoders"].items():
        tqdm.write(f"{name}: CV top-1 {summary['cv_top1']:.4f} {summary['per_class']}")
    (out / "i3d_study.json").write_text(json.dumps(result, indent=2))
    return result
