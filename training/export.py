"""Export a trained run to ONNX, check it against torch, and record it in the manifest.

The manifest (`exported_models/manifest.json`) is the only thing the service reads: file,
checksum, input spec, labels, metrics and what the model was trained on.

    entry = export_classifier(Path("runs/r2plus1d"), Path("exported_models"), DATA)
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from service.video.preprocess import ClipSpec
from training.data.clip_cache import ClipCache
from training.data.datasets import ClipDataset
from training.loops.classification import TrainOptions, load_checkpoint, prepare_split
from training.models.registry import get_family

OPSET = 17
PARITY_TOLERANCE = 1e-4
MANIFEST_NAME = "manifest.json"


class ParityError(RuntimeError):
    """The ONNX model's logits differ from torch's by more than the tolerance."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def export_onnx(model: torch.nn.Module, spec: ClipSpec, path: Path) -> None:
    dummy = torch.zeros(2, 3, spec.frames, spec.crop, spec.crop)
    torch.onnx.export(
        model.eval(),
        (dummy,),
        str(path),
        input_names=["clip"],
        output_names=["logits"],
        dynamic_axes={"clip": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=OPSET,
        dynamo=False,
    )


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def check_parity(model: torch.nn.Module, path: Path, clips: torch.Tensor) -> float:
    """Max |logit difference| between torch and onnxruntime on real clips; raises past tolerance."""
    with torch.no_grad():
        expected = model.eval()(clips).numpy()
    actual = _session(path).run(["logits"], {"clip": clips.numpy()})[0]
    diff = float(np.abs(expected - actual).max())
    if diff > PARITY_TOLERANCE:
        raise ParityError(f"ONNX logits differ from torch by {diff:.2e} > {PARITY_TOLERANCE:.0e}")
    return diff


def cpu_latency_ms(path: Path, spec: ClipSpec, repeats: int = 20) -> float:
    """Median onnxruntime latency for one clip (batch 1) on this machine's CPU."""
    session = _session(path)
    clip = np.zeros((1, 3, spec.frames, spec.crop, spec.crop), np.float32)
    session.run(["logits"], {"clip": clip})
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        session.run(["logits"], {"clip": clip})
        timings.append((time.perf_counter() - started) * 1000)
    return round(float(np.median(timings)), 2)


def read_manifest(out_dir: Path) -> dict:
    path = out_dir / MANIFEST_NAME
    if path.exists():
        return json.loads(path.read_text())
    return {"schema_version": 1, "default_classifier": None, "classifiers": [], "styles": []}


def write_manifest_entry(out_dir: Path, entry: dict, make_default: bool) -> None:
    manifest = read_manifest(out_dir)
    others = [c for c in manifest["classifiers"] if c["name"] != entry["name"]]
    manifest["classifiers"] = sorted([*others, entry], key=lambda c: c["name"])
    if make_default or not manifest.get("default_classifier"):
        manifest["default_classifier"] = entry["name"]
    (out_dir / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")


def _parity_clips(state: dict, data: Path, spec: ClipSpec, count: int = 4) -> torch.Tensor:
    options = state["options"]
    split = prepare_split(
        TrainOptions(
            model=options["model"],
            data=data,
            run_dir=Path("."),
            classes=options["classes"],
            seed=options["seed"],
        )
    )
    labels = state["config"]["labels"]
    cache = ClipCache(Path(options["cache_dir"]), spec.resize_short)
    dataset = ClipDataset(
        split.test[:: max(1, len(split.test) // count)][:count], labels, spec, cache, False
    )
    return torch.stack([dataset[i][0] for i in range(len(dataset))])


def export_classifier(
    run_dir: Path, out_dir: Path, data: Path, name: str | None = None, make_default: bool = False
) -> dict:
    """Write `<name>.onnx` and its manifest entry from the run's best checkpoint and metrics."""
    model, state = load_checkpoint(run_dir)
    family_name = state["config"]["family"]
    family = get_family(family_name)
    spec = family.clip_spec
    name = name or family_name
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / f"{name}.onnx"
    export_onnx(model, spec, onnx_path)
    parity = check_parity(model, onnx_path, _parity_clips(state, Path(data), spec))
    metrics = json.loads((Path(run_dir) / "metrics.json").read_text())
    options = state["options"]
    entry = {
        "name": name,
        "family": family_name,
        "display_name": family.display_name,
        "file": onnx_path.name,
        "sha256": sha256_of(onnx_path),
        "input_name": "clip",
        "output_name": "logits",
        "input": spec.to_manifest(),
        "labels": state["config"]["labels"],
        "metrics": {
            "top1": metrics["top1"],
            "per_class": metrics["per_class"],
            "confusion_matrix": metrics["confusion_matrix"],
            "test_clips": metrics["clips"],
            "params": metrics["params"],
            "file_size_bytes": onnx_path.stat().st_size,
            "training_time_s": metrics["training_time_s"],
            "cpu_latency_ms": cpu_latency_ms(onnx_path, spec),
            "onnx_parity_max_abs_diff": parity,
        },
        "training": {
            "data": "UCF101 in ../shared/data: YoYo, Punch as AVI; ApplyEyeMakeup as frame folders",
            "classes": state["config"]["labels"],
            "split": metrics["split"],
            "test_groups": metrics["test_groups"],
            "train_clips": metrics["train_clips"],
            "val_clips": metrics["val_clips"],
            "epochs": options["epochs"],
            "best_epoch": metrics["best_epoch"],
            "seed": options["seed"],
            "opset": OPSET,
            "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    }
    write_manifest_entry(out_dir, entry, make_default)
    return entry
