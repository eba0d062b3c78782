"""The named styles judged on held-out footage of all nine actions, as issue #17 asks.

Frames come from the classifiers' test groups (the lowest 30 % of each class's groups, never
trained on by any style or classifier): a fixed number of clips per class spread over its groups,
frames spread over each clip. For every named style: KID (EfficientNet-Lite0 features) of its
outputs and of the raw frames to every painter's set, the cut against the raw frames, its 5th
percentile over random 80 % subsets of the frames and of the paintings, the nearest painter and
the margin to the next, and the content SSIM (luma) to the raw frames.

    python -m training styles heldout --data ../shared/data [--report docs/styles_heldout.json]
    python -m training styles heldout --runs ukiyoe=runs/ft9/ukiyoe_s0 ukiyoe=runs/ft9/ukiyoe_s1
    python -m training styles heldout --runtime openvino --report docs/styles_heldout_openvino.json

`--runtime openvino` paints the named styles as the service's workers do (bfloat16 where the CPU
has it); the default, onnxruntime, is the float32 reference.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from service.contract.manifest import load_manifest
from service.inference.networks import StyleRuntime
from service.inference.stylize import FeedForwardStyle
from training.classify.ucf101 import ClipRecord, discover_clips, split_by_group
from training.styles.data import STYLES, sample_clip_frames
from training.styles.distillation import load_student, stylise_batch
from training.styles.metrics import kernel_inception_distance
from training.styles.pipeline import FeatureCache, content_ssim, kid_cut_percent

CUT_TARGET, CUT_FLOOR_TARGET, MARGIN_TARGET = 55.0, 50.0, 0.9


def heldout_clips(data_root: Path, clips_per_class: int) -> list[ClipRecord]:
    """`clips_per_class` test-group clips of each class, spread evenly over its sorted clips."""
    test = split_by_group(discover_clips(data_root)).test
    chosen = []
    for label in sorted({c.label for c in test}):
        clips = sorted((c for c in test if c.label == label), key=lambda c: c.name)
        picks = np.linspace(0, len(clips) - 1, min(clips_per_class, len(clips))).round()
        chosen += [clips[int(i)] for i in sorted(set(picks))]
    return chosen


def _cut_floor(
    out: np.ndarray, raw: np.ndarray, paintings: np.ndarray, rounds: int, seed: int
) -> float:
    """5th percentile of the KID cut over random 80 % subsets of frames and paintings."""
    rng = np.random.default_rng(seed)
    cuts = []
    for _ in range(rounds):
        frames = rng.choice(len(raw), int(0.8 * len(raw)), replace=False)
        canvas = rng.choice(len(paintings), int(0.8 * len(paintings)), replace=False)
        own = kernel_inception_distance(out[frames], paintings[canvas])
        cuts.append(kid_cut_percent(own, kernel_inception_distance(raw[frames], paintings[canvas])))
    return float(np.percentile(cuts, 5))


def stylise_as_served(model: Path, frames: np.ndarray, runtime: StyleRuntime) -> np.ndarray:
    """(N, H, W, 3) uint8 frames through a style ONNX on `runtime`, one frame a call, by the
    service's own engine (on onnxruntime the same pictures as `onnx_stylise`, bit for bit)."""
    engine = FeedForwardStyle(model, threads=2, runtime=runtime)
    return np.stack([engine([frame])[0] for frame in frames])


def check_heldout(
    models_dir: Path,
    data_root: Path,
    cache_dir: Path,
    clips_per_class: int = 8,
    frames_per_clip: int = 5,
    rounds: int = 200,
    report: Path | None = None,
    runs: dict[str, list[Path]] | None = None,
    runtime: StyleRuntime = "onnxruntime",
) -> dict:
    """Every named style of the manifest in `models_dir` painted on `runtime`, and (`runs`:
    style -> run folders or checkpoints) training runs beside them, such as the seeds whose
    average ships."""
    clips = heldout_clips(data_root, clips_per_class)
    raw = np.stack(
        [
            f
            for c in tqdm(clips, desc="held-out clips")
            for f in sample_clip_frames(c, frames_per_clip)
        ]
    )
    features = FeatureCache(cache_dir)
    painters = features.painters(data_root)
    raw_features = features("nine_heldout_raw", raw, reuse=False)

    def judged(style: str, outputs: np.ndarray) -> dict:
        out_features = features(f"nine_heldout_{style}", outputs, reuse=False)
        kid = {p: kernel_inception_distance(out_features, f) for p, f in painters.items()}
        own = kid[style]
        others = sorted(v for p, v in kid.items() if p != style)
        own_raw = kernel_inception_distance(raw_features, painters[style])
        row = {
            "kid_raw": round(own_raw, 4),
            "kid_styled": round(own, 4),
            "cut_percent": kid_cut_percent(own, own_raw),
            "cut_p5_percent": round(
                _cut_floor(out_features, raw_features, painters[style], rounds, seed=0), 1
            ),
            "nearest_painter": min(kid, key=kid.get),
            "own_over_next": round(own / others[0], 3),
            "content_ssim": round(content_ssim(outputs, raw), 3),
            "kid_to_each_painter": {p: round(v, 4) for p, v in kid.items()},
        }
        row["meets_targets"] = (
            row["cut_percent"] >= CUT_TARGET
            and row["cut_p5_percent"] >= CUT_FLOOR_TARGET
            and row["own_over_next"] <= MARGIN_TARGET
        )
        return row

    result: dict = {
        "clips": len(clips),
        "classes": sorted({c.label for c in clips}),
        "frames": len(raw),
        "runtime": runtime,
        "targets": {"cut": CUT_TARGET, "cut_p5": CUT_FLOOR_TARGET, "margin": MARGIN_TARGET},
        "styles": {},
    }
    for entry in tqdm(load_manifest(models_dir).styles, desc="styles"):
        if entry.name in STYLES:
            result["styles"][entry.name] = judged(
                entry.name, stylise_as_served(models_dir / entry.file, raw, runtime)
            )
    for style, candidates in (runs or {}).items():
        for candidate in candidates:
            student, _ = load_student(candidate)
            row = judged(style, stylise_batch(student, raw))
            result.setdefault("runs", {}).setdefault(style, {})[str(candidate)] = row
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps(result, indent=2) + "\n")
    return result
