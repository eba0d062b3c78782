"""The model comparison, generated from the manifest: a markdown table and confusion matrices.

One confusion matrix PNG per classifier.

    python -m training report --models exported_models --out docs
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from service.contract.manifest import load_manifest_json  # noqa: E402

STUDY_ROWS = [
    ("study: 2D CNN + LSTM, VGG-style", "90 %", "5.5 M", "21 MB", "0.5 h"),
    ("study: 2D CNN + LSTM, ResNet-style", "77 %", "0.77 M", "2.95 MB", "2 h"),
    ("study: (2+1)D ResNet", "79 %", "0.44 M", "1.69 MB", "0.5 h"),
    ("study: CSN", "18 %", "0.5 M", "0.15 MB", "3 h"),
]


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    return f"{seconds / 60:.1f} min" if seconds < 3600 else f"{seconds / 3600:.1f} h"


def _open_set(open_set: dict | None) -> str:
    if not open_set or open_set.get("unseen_actions_flagged") is None:
        return "–"
    flagged = round(open_set["unseen_actions_flagged"] * open_set["unseen_action_clips"])
    confident = _pct(open_set.get("test_in_class_confident"))
    cell = f"{confident} / {flagged} of {open_set['unseen_action_clips']}"
    if other := open_set.get("other_sources"):
        cell += f" + {other['flagged']} of {other['clips']}"
    return cell


def _codec_check(metrics: dict) -> str:
    check = metrics.get("codec_check")
    if not check:
        return "–"
    top1 = check["top1"]
    return (
        f"{_pct(top1.get('mpeg4_avi'))} / {_pct(top1.get('h264_mp4'))}"
        f" / {_pct(top1.get('mjpeg_avi'))} (gap {check['max_gap_points']:.1f})"
    )


def _hardware(training: dict) -> str:
    device = training.get("device", "cpu")
    if device.startswith("cuda"):
        return training.get("device_name", "GPU")
    return f"{training.get('cpu_cores', 2)} CPU cores"


def _ranked(manifest: dict) -> list[dict]:
    return sorted(manifest["classifiers"], key=lambda e: -(e["metrics"].get("top1") or 0))


def comparison_table(manifest: dict) -> str:
    """Markdown: one row per exported classifier, then the study's rows for reference."""
    header = [
        "model",
        "held-out top-1",
        "re-encoded: MPEG-4 AVI / H.264 MP4 / MJPEG AVI (gap, points)",
        "params",
        "file",
        "training time (hardware)",
        "CPU latency / clip",
        "open set: in-class confident / unseen flagged",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for entry in _ranked(manifest):
        metrics = entry["metrics"]
        default = " (default)" if entry["name"] == manifest.get("default_classifier") else ""
        row = [
            f"`{entry['name']}`{default}: {entry['display_name']}",
            f"**{_pct(metrics.get('top1'))}** of {metrics.get('test_clips', '?')}",
            _codec_check(metrics),
            f"{metrics.get('params', 0) / 1e6:.2f} M",
            f"{metrics.get('file_size_bytes', 0) / 1e6:.1f} MB",
            f"{_duration(metrics.get('training_time_s'))} ({_hardware(entry.get('training', {}))})",
            f"{metrics.get('cpu_latency_ms', 0):.0f} ms",
            _open_set(entry.get("open_set")),
        ]
        lines.append("| " + " | ".join(row) + " |")
    for name, acc, params, size, time in STUDY_ROWS:
        row = [name, f"{acc} (9 classes)", "–", params, size, time, "–", "–"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def per_class_table(manifest: dict) -> str:
    """Markdown: held-out top-1 of each class (rows: models), with each class's clip count."""
    labels = sorted({label for entry in manifest["classifiers"] for label in entry["labels"]})
    lines = [
        "| model | " + " | ".join(labels) + " |",
        "|" + "---|" * (len(labels) + 1),
    ]
    for entry in _ranked(manifest):
        per_class = entry["metrics"].get("per_class", {})
        cells = [_pct(per_class.get(label)) for label in labels]
        lines.append(f"| `{entry['name']}` | " + " | ".join(cells) + " |")
    counts = _clips_per_class(manifest, labels)
    if counts:
        lines.append("| held-out clips | " + " | ".join(counts) + " |")
    return "\n".join(lines)


def _clips_per_class(manifest: dict, labels: list[str]) -> list[str]:
    for entry in manifest["classifiers"]:
        matrix = entry["metrics"].get("confusion_matrix")
        if matrix and entry["labels"] == labels:
            return [str(sum(row)) for row in matrix]
    return []


def plot_confusion(entry: dict, path: Path) -> None:
    matrix = np.asarray(entry["metrics"]["confusion_matrix"])
    labels = entry["labels"]
    fig, ax = plt.subplots(figsize=(1.2 * len(labels) + 2, 1.2 * len(labels) + 1.5))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), count in np.ndenumerate(matrix):
        colour = "white" if count > matrix.max() / 2 else "black"
        ax.text(j, i, str(count), ha="center", va="center", color=colour)
    ax.set_title(f"{entry['name']}: held-out top-1 {_pct(entry['metrics'].get('top1'))}")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def write_report(models_dir: Path, out_dir: Path) -> Path:
    manifest = load_manifest_json(models_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sections = [
        "# Classifier comparison",
        "",
        "Generated by `python -m training report` from `exported_models/manifest.json`.",
        "Held-out = clips of groups that no training clip shares (see the README).",
        "",
        comparison_table(manifest),
        "",
        "Re-encoded: the same held-out clips encoded again through PyAV, as MPEG-4 Part 2 in AVI,",
        "as H.264 in MP4 and as JPEG frames in AVI (`python -m training codec-check`); the gap",
        "is the largest difference from the clips as stored. Open set: held-out clips of the",
        "trained classes that stay confident / clips of other actions flagged: those in",
        "`../shared/data/clips` + seven from other sources (`python -m training unseen-check`).",
        "",
        "## Per class (held-out top-1)",
        "",
        per_class_table(manifest),
        "",
        "## Confusion matrices",
        "",
    ]
    for stale in out_dir.glob("confusion_*.png"):  # of models no longer in the manifest, too
        stale.unlink()
    for entry in manifest["classifiers"]:
        if entry["metrics"].get("confusion_matrix"):
            png = out_dir / f"confusion_{entry['name']}.png"
            plot_confusion(entry, png)
            sections.append(f"![{entry['name']} confusion matrix]({png.name})")
    path = out_dir / "models.md"
    path.write_text("\n".join(sections) + "\n")
    return path
