"""int8 static quantisation (QDQ) of the style networks: speed and fidelity against float32.

Each named style's ONNX is quantised with onnxruntime (convolutions only, per-channel int8
weights, uint8 activations calibrated on frames of the training groups), then measured beside
its float32 self in one run: fps at 320x240 one frame on THREADS threads and with THREADS frames
in flight (as workers paint), and SSIM of its output against the float32 output on held-out
frames (issue #20 asks for at least 0.97).

    python benchmarks/style_int8.py [--styles vangogh ukiyoe] [--calibration minmax percentile]

Needs the content cache of `python -m training distill` (built on first use, a few minutes).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from functools import partial
from pathlib import Path

import numpy as np
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.style_fps import fps_both_ways, served_run  # noqa: E402
from training.styles.data import STYLES, load_content  # noqa: E402
from training.styles.export import INPUT_NAME, network_input, onnx_stylise  # noqa: E402
from training.styles.metrics import ssim  # noqa: E402

CALIBRATIONS = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile}


class FrameReader(CalibrationDataReader):
    """Feeds (1, 3, H, W) float inputs of uint8 RGB frames to the calibrator."""

    def __init__(self, frames: np.ndarray) -> None:
        self._frames = iter(frames)

    def get_next(self) -> dict[str, np.ndarray] | None:
        frame = next(self._frames, None)
        if frame is None:
            return None
        return {INPUT_NAME: network_input(frame)}


def quantised(model: Path, out: Path, calibration: np.ndarray, method: str) -> Path:
    prepared = out / f"{model.stem}_prepared.onnx"
    quant_pre_process(str(model), str(prepared))
    target = out / f"{model.stem}_{method}_int8.onnx"
    quantize_static(
        str(prepared),
        str(target),
        FrameReader(calibration),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["Conv"],
        calibrate_method=CALIBRATIONS[method],
    )
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=REPO_ROOT / "exported_models" / "styles")
    parser.add_argument("--data", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    parser.add_argument("--cache-dir", type=Path, default=REPO_ROOT / ".cache" / "styles")
    parser.add_argument("--styles", nargs="+", choices=list(STYLES), default=["vangogh"])
    parser.add_argument(
        "--calibration", nargs="+", choices=list(CALIBRATIONS), default=list(CALIBRATIONS)
    )
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    content = load_content(args.data, args.cache_dir)
    rng = np.random.default_rng(0)
    calibration = content.train_frames[rng.choice(len(content.train_frames), 64, replace=False)]
    heldout = content.heldout_frames[:: max(1, len(content.heldout_frames) // 48)][:48]

    print("| network | fps, 1 frame | fps, frames in flight | SSIM to float32, mean (min) |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for style in args.styles:
            model = args.models / f"{style}.onnx"
            paths = {f"{style} float32": model}
            for method in args.calibration:
                paths[f"{style} int8 {method}"] = quantised(model, Path(tmp), calibration, method)
            reference = onnx_stylise(model, heldout)
            networks = {name: partial(served_run, path) for name, path in paths.items()}
            one_frame, in_flight = fps_both_ways(networks, args.threads)
            for name, path in paths.items():
                outputs = onnx_stylise(path, heldout)
                scores = [ssim(a, b) for a, b in zip(reference, outputs, strict=True)]
                print(
                    f"| {name} | {one_frame[name]:.1f} | {in_flight[name]:.1f} "
                    f"| {np.mean(scores):.3f} ({np.min(scores):.3f}) |"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
