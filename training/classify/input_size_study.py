"""Does the frozen encoder see small held objects better at another input? Group CV decides.

The default model sees a 224 px centre crop of 8 frames of a 320x240 source; a yo-yo or a bow
string is a few pixels there. ImageNet networks trained with random-resized crops often do
better tested at a somewhat larger input than they were trained at (Touvron et al. 2019,
"FixRes"); the crop drops a quarter of the width; the heads pool over any number of frames. Each
candidate is compared by `group_cv`: the run's recipe cross-validated over training + validation
groups.

    python -m training input-size-study --run-dir runs/effnet_temporal --data ../shared/data
    python -m training serving-view-study --run-dir runs/effnet_temporal --data ../shared/data
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from service.video.preprocess import centre_crop, normalise, resize_short_side, sample_indices
from training.classify.clip_cache import decode_clip
from training.classify.group_cv import (
    FOLDS,
    Study,
    augmented_and_serving_features,
    cached,
    cross_validated_log_probs,
    cv_summary,
    study_setup,
)

SIZES = (224, 256, 288)


def _features_at(study: Study, size: int) -> dict[str, torch.Tensor]:
    """(N, views, T, 1280) augmented and (N, T, 1280) serving features at input `size`."""

    def featurize(clips: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"avg": study.reference.frame_features(clips)}

    return augmented_and_serving_features(study, featurize, size)["avg"]


def _size_features(study: Study, out: Path, size: int) -> dict[str, torch.Tensor]:
    """Resumable a size at a time."""
    return cached(out / f"features_{size}.pt", lambda: _features_at(study, size))


def input_size_study(run_dir: Path, data: Path, sizes=SIZES, out: Path | None = None) -> dict:
    """CV top-1 of the run's recipe at each input size; features kept per size in `out`."""
    run_dir = Path(run_dir)
    out = Path(out or run_dir / "input_size_study")
    out.mkdir(parents=True, exist_ok=True)
    study = study_setup(run_dir, data)
    result = {"run": str(run_dir), "clips": len(study.records), "folds": FOLDS, "sizes": {}}
    for size in sizes:
        features = _size_features(study, out, size)
        log_probs = cross_validated_log_probs(
            study, features["augmented"], {"centre": features["serving"][:, None]}
        )
        result["sizes"][str(size)] = cv_summary(log_probs["centre"], study)
        tqdm.write(f"{size} px: CV top-1 {result['sizes'][str(size)]['cv_top1']:.4f}")
    (out / "input_size_study.json").write_text(json.dumps(result, indent=2))
    return result


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
    """(N, T, 1280) features of each clip's centre crop, whole frame and their mirrors, and of
    its centre crop at each of MORE_FRAMES frame counts; each clip decoded once."""
    views: dict[str, list[torch.Tensor]] = {}

    def add(view: str, pixels: np.ndarray) -> None:
        clip = torch.from_numpy(normalise(pixels, spec))[None]
        views.setdefault(view, []).append(model.frame_features(clip)[0].half())

    for record in tqdm(records, desc="serving views", unit="clip"):
        decoded = decode_clip(record)
        frames = _sampled_frames(decoded, spec, spec.frames)
        for name, crop in {"centre": centre_crop(frames, spec.crop), "full": frames}.items():
            add(name, crop)
            add(f"{name}_mirror", crop[:, :, ::-1])
        for count in MORE_FRAMES:
            add(f"centre_{count}", centre_crop(_sampled_frames(decoded, spec, count), spec.crop))
    return {name: torch.stack(features) for name, features in views.items()}


def serving_view_study(run_dir: Path, data: Path, out: Path | None = None) -> dict:
    """CV top-1 of the run's recipe, trained as shipped, served on other views of each clip:
    its mirror, the whole frame rather than the centre crop, more frames. Reuses the 224 px
    features of `input_size_study` (computed here if missing)."""
    run_dir = Path(run_dir)
    out = Path(out or run_dir / "input_size_study")
    out.mkdir(parents=True, exist_ok=True)
    study = study_setup(run_dir, data)
    reference, records, spec = study.reference, study.records, study.spec
    augmented = _size_features(study, out, spec.crop)["augmented"]
    served = cached(
        out / f"serving_views_{spec.crop}.pt",
        lambda: _serving_view_features(reference, records, spec),
    )
    candidates = {name: torch.stack(views(served), 1) for name, (views, _) in SERVING_VIEWS.items()}
    log_probs = cross_validated_log_probs(study, augmented, candidates)
    result = {"run": str(run_dir), "clips": len(records), "folds": FOLDS, "views": {}}
    for name, (_, cost) in SERVING_VIEWS.items():
        result["views"][name] = {
            **cv_summary(log_probs[name], study),
            "encoder_cost": round(cost, 2),
        }
        tqdm.write(f"{name}: CV top-1 {result['views'][name]['cv_top1']:.4f}")
    (out / "serving_view_study.json").write_text(json.dumps(result, indent=2))
    return result
