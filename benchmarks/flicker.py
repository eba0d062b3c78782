"""Flicker of stylised video: warping error per-frame vs flow-smoothed, for each style.

On the shared clips; prints a table, not a test.

    python benchmarks/flicker.py [--frames 90] [--blend 0.7] [--runtime openvino]

The named styles run on onnxruntime (float32) unless `--runtime openvino` (as workers paint).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from service.contract.manifest import load_manifest
from service.inference.styles import StyleEngines
from service.inference.temporal import FlowSmoother, SmoothingOptions, warping_error
from service.video.decode import iter_frames

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
CLIPS = [
    DATA / "clips" / "v_ApplyEyeMakeup_g01_c01.avi",
    DATA / "clips" / "v_Basketball_g01_c01.avi",
    DATA / "clips" / "hmdb51_handstand.mp4",
    DATA / "clips" / "kinetics_demo.mp4",
    DATA / "ucf101" / "Punch" / "v_Punch_g01_c01.avi",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=90)
    parser.add_argument("--blend", type=float, default=SmoothingOptions().blend)
    parser.add_argument("--runtime", choices=["onnxruntime", "openvino"], default="onnxruntime")
    parser.add_argument("--styles", nargs="*", help="only these named styles (default: all)")
    parser.add_argument("--no-painting", action="store_true", help="skip the any-painting row")
    args = parser.parse_args()
    models = REPO / "exported_models"
    engines = StyleEngines(models, load_manifest(models), threads=2, runtime=args.runtime)
    names = args.styles or list(engines.catalog.entries)
    styles = {name: engines.named(name) for name in names}
    painting = cv2.cvtColor(
        cv2.imread(str(DATA / "styles" / "reference" / "starry_night.jpg")), cv2.COLOR_BGR2RGB
    )
    if engines.catalog.arbitrary is not None and not args.no_painting:
        styles["starry_night (any painting)"] = engines.painting(painting)
    print(f"warping error x1000 (first {args.frames} frames), blend {args.blend}; MAD = mean |ours")
    print("- per-frame| on 0..255\n")
    print("| clip | source | style | per-frame | ours | change | MAD |")
    print("|---|---|---|---|---|---|---|")
    for clip in CLIPS:
        sources = [f for _, f in zip(range(args.frames), iter_frames(clip), strict=False)]
        source_error = 1000 * warping_error(sources, sources)
        for name, engine in styles.items():
            per_frame = [engine([f])[0] for f in sources]
            ours = FlowSmoother(SmoothingOptions(blend=args.blend))(sources, per_frame)
            before = 1000 * warping_error(sources, per_frame)
            after = 1000 * warping_error(sources, ours)
            mad = np.mean(
                [np.abs(a.astype(float) - b).mean() for a, b in zip(ours, per_frame, strict=True)]
            )
            print(
                f"| {clip.name} | {source_error:.2f} | {name} | {before:.2f} | {after:.2f} "
                f"| {100 * (after - before) / before:+.0f} % | {mad:.1f} |"
            )


if __name__ == "__main__":
    main()
