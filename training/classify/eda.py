"""The study's exploration of the action data, as a reproducible report (PNGs + a JSON summary).

Clips per class, clip durations, RGB histograms per class, mean optical-flow magnitude per class
(OpenCV DIS between consecutive frames) and a grid of sample frames.

    python -m training eda ../shared/data --out reports/eda
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from service.video.decode import DecodeLimits, probe  # noqa: E402
from service.video.preprocess import resize_short_side, sample_indices  # noqa: E402
from training.classify.clip_cache import decode_clip  # noqa: E402
from training.classify.ucf101 import ClipRecord, discover_clips  # noqa: E402

FLOW_PAIRS = 8  # consecutive-frame pairs per clip for the motion statistic
ANALYSIS_SIZE = 128  # short side the statistics are computed at


def _clip_stats(record: ClipRecord, dis: cv2.DISOpticalFlow) -> dict:
    frames = [resize_short_side(f, ANALYSIS_SIZE) for f in decode_clip(record)]
    duration = None
    if record.kind == "video":
        duration = probe(
            record.path, DecodeLimits(max_duration_s=3600, max_frames=200_000)
        ).duration_s
    histogram = np.zeros((3, 32))
    for frame in frames[:: max(1, len(frames) // 8)]:
        for channel in range(3):
            histogram[channel] += np.histogram(frame[..., channel], bins=32, range=(0, 256))[0]
    magnitudes = []
    for i in sample_indices(max(1, len(frames) - 1), FLOW_PAIRS):
        if i + 1 < len(frames):
            a, b = (cv2.cvtColor(frames[j], cv2.COLOR_RGB2GRAY) for j in (i, i + 1))
            flow = dis.calc(a, b, None)
            magnitudes.append(float(np.linalg.norm(flow, axis=2).mean()))
    return {
        "frames": len(frames),
        "duration_s": duration,
        "rgb_histogram": (histogram / histogram.sum(axis=1, keepdims=True)).tolist(),
        "flow_magnitude": float(np.mean(magnitudes)) if magnitudes else 0.0,
        "sample_frame": frames[len(frames) // 2],
    }


def _plot_bars(values: dict[str, float], title: str, ylabel: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(values)), 3.5))
    ax.bar(list(values), list(values.values()), color="#4a78b5")
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _plot_durations(durations: dict[str, list[float]], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 3.8))
    longest = max((max(v) for v in durations.values() if v), default=1.0)
    bins = np.linspace(0, longest, 25)
    for label, values in durations.items():
        if values:  # outlines, so that nine classes stay readable on one axis
            ax.hist(values, bins=bins, histtype="step", linewidth=1.5, label=label)
    ax.set_xlabel("clip duration (s)")
    ax.set_ylabel("clips")
    ax.set_title("Clip durations (video clips)")
    ax.legend(fontsize="small", ncols=2)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _plot_histograms(histograms: dict[str, np.ndarray], path: Path) -> None:
    columns = min(3, len(histograms))
    rows = -(-len(histograms) // columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(3.5 * columns, 2.6 * rows), squeeze=False, sharey=True
    )
    centres = np.arange(32) * 8 + 4
    for ax, (label, histogram) in zip(axes.flat, histograms.items(), strict=False):
        for channel, colour in enumerate(("red", "green", "blue")):
            ax.plot(centres, histogram[channel], color=colour)
        ax.set_title(label)
        ax.set_xlabel("intensity")
    for ax in list(axes.flat)[len(histograms) :]:
        ax.set_visible(False)
    fig.suptitle("Mean RGB histogram per class")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _save_grid(samples: dict[str, list[np.ndarray]], path: Path, per_class: int = 4) -> None:
    rows = []
    for frames in samples.values():
        tiles = [cv2.resize(f, (170, 128)) for f in frames[:per_class]]
        tiles += [np.zeros((128, 170, 3), np.uint8)] * (per_class - len(tiles))
        rows.append(np.hstack(tiles))
    grid = np.vstack(rows)
    fig, ax = plt.subplots(figsize=(grid.shape[1] / 80, grid.shape[0] / 80 + 0.4))
    ax.imshow(grid)
    ax.set_yticks([64 + 128 * i for i in range(len(samples))], list(samples))
    ax.set_xticks([])
    ax.set_title("Sample frames (middle of clip)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def run_eda(
    data: Path, out_dir: Path, classes: list[str] | None = None, max_clips_per_class: int = 0
) -> dict:
    """Write the report's PNGs and `summary.json` to `out_dir`; returns the summary."""
    out_dir.mkdir(parents=True, exist_ok=True)
    records = discover_clips(data, classes)
    by_class: dict[str, list[ClipRecord]] = defaultdict(list)
    for record in records:
        by_class[record.label].append(record)
    counts = {label: len(clips) for label, clips in by_class.items()}
    if max_clips_per_class:  # statistics on an even spread of clips; counts stay whole
        by_class = {
            k: v[:: max(1, len(v) // max_clips_per_class)][:max_clips_per_class]
            for k, v in by_class.items()
        }
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    summary, durations, histograms, samples = {}, {}, {}, {}
    for label in sorted(by_class):
        stats = [
            _clip_stats(r, dis) for r in tqdm(by_class[label], desc=f"eda {label}", unit="clip")
        ]
        clip_durations = [s["duration_s"] for s in stats if s["duration_s"] is not None]
        durations[label] = clip_durations
        histograms[label] = np.mean([s["rgb_histogram"] for s in stats], axis=0)
        samples[label] = [s["sample_frame"] for s in stats[:: max(1, len(stats) // 4)]]
        summary[label] = {
            "clips": counts[label],
            "clips_analysed": len(stats),
            "groups": len({r.group for r in by_class[label]}),
            "layout": sorted({r.kind for r in by_class[label]}),
            "mean_duration_s": float(np.mean(clip_durations)) if clip_durations else None,
            "mean_frames": float(np.mean([s["frames"] for s in stats])),
            # Frame folders hold frames sampled across the clip, so their "consecutive" frames are
            # further apart in time than a video's: compare flow within one layout.
            "mean_flow_magnitude_px": float(np.mean([s["flow_magnitude"] for s in stats])),
            "mean_rgb": [
                float((histograms[label][c] * (np.arange(32) * 8 + 4)).sum()) for c in range(3)
            ],
        }
    _plot_bars(
        {k: v["clips"] for k, v in summary.items()},
        "Clips per class",
        "clips",
        out_dir / "clips_per_class.png",
    )
    _plot_durations(durations, out_dir / "durations.png")
    _plot_histograms(histograms, out_dir / "rgb_histograms.png")
    _plot_bars(
        {k: v["mean_flow_magnitude_px"] for k, v in summary.items()},
        f"Mean optical-flow magnitude (DIS, short side {ANALYSIS_SIZE} px)",
        "px / frame",
        out_dir / "flow_magnitude.png",
    )
    _save_grid(samples, out_dir / "sample_frames.png")
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
