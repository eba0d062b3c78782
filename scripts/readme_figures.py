"""The README's two pictures, made by the service's own code in-process (no HTTP, no torch).

docs/classify_example.png: a held-out clip's middle frame beside the default model's answer.
docs/stylised_example.png: one frame as uploaded and in every named style.

    .venv/bin/python scripts/readme_figures.py
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from service.contract.manifest import load_manifest  # noqa: E402
from service.inference.classifier import classify  # noqa: E402
from service.inference.registry import load_registry  # noqa: E402
from service.inference.styles import StyleEngines  # noqa: E402
from service.video.decode import DecodeLimits, iter_frames  # noqa: E402

DATA = REPO_ROOT.parent / "shared" / "data"
# Groups g08-g13 are held out of training for the six re-encoded classes.
CLIP = DATA / "ucf101" / "PlayingViolin" / "v_PlayingViolin_g09_c02.mp4"
STYLE_CLIP = DATA / "ucf101" / "HorseRace" / "v_HorseRace_g10_c01.mp4"


def middle_frame(path: Path) -> np.ndarray:
    frames = list(iter_frames(path, DecodeLimits()))
    return frames[len(frames) // 2]


def classify_figure(models: Path, clip: Path, out: Path) -> None:
    registry = load_registry(models, intra_op_threads=2)
    classifier = registry.classifier(None)
    answer = classify(clip, classifier, 5, DecodeLimits())
    labels = [p.label for p in answer.predictions][::-1]
    scores = [p.score for p in answer.predictions][::-1]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3), width_ratios=[1.1, 1])
    left.imshow(middle_frame(clip))
    left.set_axis_off()
    left.set_title(clip.name, fontsize=9)
    right.barh(labels, scores, color="#4a78b5")
    right.set_xlim(0, 1)
    verdict = "confident" if answer.confident else "not confident"
    right.set_title(
        f"POST /classify ({classifier.name}): {answer.top_label}, {verdict}", fontsize=9
    )
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def stylised_figure(models: Path, clip: Path, out: Path) -> None:
    manifest = load_manifest(models)
    engines = StyleEngines(models, manifest, threads=2)
    frame = middle_frame(clip)
    tiles = [("as uploaded", frame)]
    tiles += [(s.display_name, engines.named(s.name)([frame])[0]) for s in manifest.styles]
    fig, axes = plt.subplots(1, len(tiles), figsize=(2.6 * len(tiles), 2.3))
    for ax, (title, image) in zip(axes, tiles, strict=True):
        ax.imshow(image)
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=Path, default=REPO_ROOT / "exported_models")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs")
    args = parser.parse_args()
    cv2.setNumThreads(2)
    classify_figure(args.models, CLIP, args.out / "classify_example.png")
    stylised_figure(args.models, STYLE_CLIP, args.out / "stylised_example.png")
    print(f"wrote {args.out / 'classify_example.png'} and {args.out / 'stylised_example.png'}")


if __name__ == "__main__":
    main()
