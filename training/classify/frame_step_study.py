"""Should I3D see the motion as it played? Group CV decides.

Every model samples 16 frames spread over the whole clip (about 11 frames apart in a 7 s clip),
and so did the I3D study that made I3D the default. Kinetics trained I3D on 64 consecutive frames
at 25 fps: spread frames show it a sped-up film, and it called a held-in archer "archery" with
far more confidence on consecutive frames. This cross-validates I3D on 16 frames `step` apart in
the middle of the clip (a random place for the augmented views), the same number of frames,
so the serving cost is unchanged. Everything else repeats the I3D study's I3D arm: the float32
weights, the shipped recipe as effnet_temporal's manifest entry records it, the same 484 clips,
folds and head seeds, so its figures compare with that study's recorded ones.

    python -m training frame-step-study --data ../shared/data --step 2 --out runs/frame_step_study
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from training.classify.group_cv import (
    FOLDS,
    augmented_and_serving_features,
    cached,
    cv_summary,
    served_cv_log_probs,
)
from training.classify.i3d_study import CANDIDATE, shipped_recipe_study
from training.classify.models.registry import get_family
from training.i3d import i3d_kinetics400


def frame_step_study(
    data: Path,
    out: Path,
    step: int,
    models_dir: Path = Path("exported_models"),
    max_clips: int = 0,
) -> dict:
    """CV top-1 of the shipped recipe on I3D features of frames `step` apart; cached in `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    recipe = shipped_recipe_study(data, models_dir, max_clips)
    study = replace(recipe, spec=replace(get_family(CANDIDATE).clip_spec, frame_step=step))
    encoder = i3d_kinetics400().eval()  # float32, as in the I3D study
    features = cached(
        out / f"features_i3d_step{step}.pt",
        lambda: augmented_and_serving_features(
            study, lambda clips: {"f": encoder.features(clips).transpose(1, 2)}, study.spec.crop
        )["f"],
    )
    log_probs = served_cv_log_probs(study, features, out / f"log_probs_i3d_step{step}.pt")
    summary = cv_summary(log_probs, study)
    result = {
        "clips": len(study.records),
        "folds": FOLDS,
        "frame_step": step,
        "recipe": {"epochs": study.options.epochs, "seed": study.options.seed},
        "i3d": summary,
    }
    tqdm.write(f"I3D, frames {step} apart: CV top-1 {summary['cv_top1']:.4f} {summary}")
    (out / f"frame_step_study_step{step}.json").write_text(json.dumps(result, indent=2))
    return result
