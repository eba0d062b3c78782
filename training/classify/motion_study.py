"""Does a motion stream see what single frames miss? Group CV decides.

Most of the default's held-out errors are YoYo and Archery taken for each other: a person
standing, holding something. A yo-yo moves fast and a bow does not, and every study so far
looked at frames one at a time. Here each sampled frame is replaced by an image of its optical
flow (OpenCV's DIS, as the service's temporal smoothing, to the frame FLOW_STEP later), seen by
the same frozen encoder as a two-stream network's second stream (Simonyan & Zisserman 2014);
heads are trained on it with the run's recipe and fused with the RGB heads late, their
log-probabilities averaged with equal weight.

    python -m training pooling-study --run-dir runs/effnet_temporal --poolings avg
    python -m training motion-study --run-dir runs/effnet_temporal

The flow features and each stream's cross-validated log-probabilities are cached in the study's
folder (RUN/motion_study), so a rerun scores without recomputing.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from training.classify.encoder_study import encoder_frame_features
from training.classify.group_cv import (
    FOLDS,
    OneClipDecoded,
    augmented_and_serving_features,
    cached,
    cv_summary,
    heads_averaged,
    served_cv_log_probs,
    study_setup,
)
from training.classify.pooling_study import mean_pooled_features
from training.classify.ucf101 import ClipRecord

FLOW_STEP = 2  # frames between the two a flow is measured on (80 ms at 25 fps)
FLOW_GAIN = 16.0  # grey levels per pixel of motion: 16 px and more saturate


def flow_images(frames: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) RGB frames -> (N, H, W, 3) uint8 images of each frame's motion.

    Channels |dx|, |dy| and the flow's length, so that a mirrored clip gives the mirrored image.
    The last FLOW_STEP frames measure against the frames before them instead.
    """
    dis = cv2.DISOpticalFlow.create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    grey = [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in frames]
    images = []
    for i, current in enumerate(grey):
        other = i + FLOW_STEP if i + FLOW_STEP < len(grey) else max(0, i - FLOW_STEP)
        flow = dis.calc(current, grey[other], None)
        motion = np.dstack([np.abs(flow), np.hypot(flow[..., 0], flow[..., 1])])
        images.append(np.clip(motion * FLOW_GAIN, 0, 255).astype(np.uint8))
    return np.stack(images)


class FlowOfClip(OneClipDecoded):
    """Each clip's frames decoded at one size, as flow images: what the augmented and serving
    views then sample, crop and jitter as they do RGB frames."""

    def frames(self, record: ClipRecord) -> np.ndarray:
        if record is not self._record:
            self._frames = flow_images(super().frames(record))
        return self._frames


def motion_study(run_dir: Path, data: Path, out: Path | None = None) -> dict:
    """CV top-1 of the run's recipe on RGB frames (the pooling study's features), on flow
    images, and on both streams' heads averaged; cached in `out` (RUN/motion_study)."""
    run_dir = Path(run_dir)
    out = Path(out or run_dir / "motion_study")
    out.mkdir(parents=True, exist_ok=True)
    study = study_setup(run_dir, data)
    size = study.spec.crop
    rgb = mean_pooled_features(run_dir)
    encoder = study.reference.encoder

    def featurize(clips):
        return {"flow": encoder_frame_features(encoder, clips)}

    flow = cached(
        out / "features_flow.pt",
        lambda: augmented_and_serving_features(study, featurize, size, FlowOfClip(size))["flow"],
    )
    log_probs = {
        "rgb": served_cv_log_probs(study, rgb, out / "log_probs_rgb.pt"),
        "flow": served_cv_log_probs(study, flow, out / "log_probs_flow.pt"),
    }
    log_probs["rgb | flow heads averaged"] = heads_averaged(log_probs["rgb"], log_probs["flow"])
    result = {
        "run": str(run_dir),
        "clips": len(study.records),
        "folds": FOLDS,
        "flow": {"step_frames": FLOW_STEP, "gain_per_pixel": FLOW_GAIN, "size": size},
        "streams": {name: cv_summary(scores, study) for name, scores in log_probs.items()},
    }
    for name, summary in result["streams"].items():
        tqdm.write(f"{name}: CV top-1 {summary['cv_top1']:.4f}")
    (out / "motion_study.json").write_text(json.dumps(result, indent=2))
    return result
