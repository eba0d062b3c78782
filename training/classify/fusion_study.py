"""Would the default gain from both encoders at once? Group CV decides.

The default of the time (I3D, Kinetics-400) and `effnet_temporal` (EfficientNet-Lite0, ImageNet)
erred on different held-out classes, so their average might err on fewer. The candidate,
`i3d_effnet_temporal`, takes I3D's input (16 frames, 224 px, [-1, 1]): I3D with its heads beside
Lite0 on the 8 odd-numbered frames with its own heads, each by its own recipe
(training/classify/fusion_training.py); the answer is the mean of the two branches'
log-probabilities.

    python -m training fusion-study --data ../shared/data --out runs/fusion_study

Same group CV as the other studies (4 group folds over the training + validation clips, head
seeds 0/1/2; each branch's heads trained on the other folds' augmented views). Features and
log-probabilities are cached in `out` (the features under the names a training run caches them).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tqdm import tqdm

from training.classify.fusion_training import BRANCHES, branch_features, branch_studies
from training.classify.group_cv import Study, cv_summary, heads_averaged, served_cv_log_probs
from training.classify.models.registry import get_family
from training.classify.training import TrainOptions

FUSION = "i3d_effnet_temporal"


def fusion_recipe(data: Path, max_clips: int = 0) -> TrainOptions:
    """The fusion's training options as `make models` runs them (seed 0, the family's epochs)."""
    family = get_family(FUSION)
    return TrainOptions(
        model=FUSION,
        data=Path(data),
        run_dir=Path("unused"),
        epochs=family.epochs,
        lr=family.lr,
        batch_size=family.batch_size,
        max_train_clips=max_clips,
    )


def branch_cv(
    data: Path, out: Path, max_clips: int = 0
) -> tuple[dict[str, Study], dict[str, dict], dict[str, dict[int, torch.Tensor]]]:
    """Per branch ("video", "frames"): its study, its features and per head seed its
    out-of-fold log-probabilities; cached in `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    studies = branch_studies(fusion_recipe(data, max_clips))
    features, log_probs = {}, {}
    for branch in BRANCHES:
        study = studies[branch.attribute]
        features[branch.attribute] = branch_features(study, branch, out)
        log_probs[branch.attribute] = served_cv_log_probs(
            study, features[branch.attribute], out / f"log_probs_{branch.features_name}.pt"
        )
    return studies, features, log_probs


def fusion_cv(
    data: Path, out: Path, max_clips: int = 0
) -> tuple[Study, dict[str, torch.Tensor], dict[str, dict[int, torch.Tensor]]]:
    """The video branch's study, its features (the open-set embedding's source), and per head
    seed the out-of-fold log-probabilities of each branch (by its features' name) and of the
    fusion; cached in `out`."""
    studies, features, by_branch = branch_cv(data, out, max_clips)
    log_probs = {b.features_name: by_branch[b.attribute] for b in BRANCHES}
    log_probs["fusion"] = heads_averaged(by_branch["video"], by_branch["frames"])
    return studies["video"], features["video"], log_probs


def fusion_study(data: Path, out: Path, max_clips: int = 0) -> dict:
    """CV top-1 of I3D alone, of Lite0 on its odd frames, and of their fusion."""
    study, _, log_probs = fusion_cv(data, out, max_clips)
    result = {
        "clips": len(study.records),
        "arms": {name: cv_summary(scores, study) for name, scores in log_probs.items()},
    }
    for name, summary in result["arms"].items():
        tqdm.write(f"{name}: CV top-1 {summary['cv_top1']:.4f} {summary['per_class']}")
    (Path(out) / "fusion_study.json").write_text(json.dumps(result, indent=2))
    return result
