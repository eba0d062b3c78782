"""Export a trained run to ONNX, check it against torch, and record it in the manifest.

The manifest (`exported_models/manifest.json`) is the only thing the service reads: file,
checksum, input spec, labels, metrics and what the model was trained on.

    entry = export_classifier(Path("runs/r2plus1d"), Path("exported_models"), DATA)
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from service.contract.manifest import (
    ClassifierEntry,
    EncoderEntry,
    OpenSetSpec,
    load_manifest_content,
    sha256_of,
    upsert_classifier,
    upsert_encoder,
)
from service.video.decode import DecodeLimits, read_sampled_frames
from service.video.preprocess import ClipSpec, frames_to_input
from training.classify.cascade_onnx import export_cascade_onnx
from training.classify.clip_cache import ClipCache
from training.classify.clip_onnx import OPSET, export_clip_module
from training.classify.datasets import ClipDataset
from training.classify.export_encoder import real_clips
from training.classify.frame_chunks import (
    FRAMES_PER_PASS,
    encode_file_in_chunks,
    encode_in_chunks,
    is_chunked,
)
from training.classify.int8_weights import store_conv_weights_as_int8
from training.classify.latency import held_out_latency_ms
from training.classify.models.i3d_effnet_temporal import I3DEffNetTemporal
from training.classify.models.registry import FAMILIES, get_family
from training.classify.open_set import (
    METHOD,
    OpenSetModel,
    choose_thresholds,
    class_distance,
    embeddings,
    is_confident,
)
from training.classify.training import (
    load_checkpoint,
    prepare_split,
    saved_options,
    trained_clip_spec,
)
from training.classify.ucf101 import VIDEO_SUFFIXES, Split, describe_clips

PARITY_TOLERANCE = 1e-4
# The same kernels on the same frames, batched differently: equal to the bit here (measured).
CHUNKED_TOLERANCE = 1e-5
OUTPUTS = ["logits", "ood_distance"]


class ParityError(RuntimeError):
    """The ONNX model's outputs differ from torch's by more than the tolerance."""


def export_onnx(model: torch.nn.Module, spec: ClipSpec, path: Path) -> None:
    export_clip_module(model, spec, path, OUTPUTS)


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def check_parity(model: torch.nn.Module, path: Path, clips: torch.Tensor) -> float:
    """Max |difference| of every output between torch and onnxruntime on real clips; raises past
    the tolerance."""
    with torch.no_grad():
        expected = model.eval()(clips)
    actual = _session(path).run(OUTPUTS, {"clip": clips.numpy()})
    diff = max(float(np.abs(e.numpy() - a).max()) for e, a in zip(expected, actual, strict=True))
    if diff > PARITY_TOLERANCE:
        raise ParityError(f"ONNX outputs differ from torch by {diff:.2e} > {PARITY_TOLERANCE:.0e}")
    return diff


def chunk_exported_encoders(models_dir: Path, data: Path) -> dict:
    """Rewrite the exported models whose image encoder still sees a whole clip at once (see
    `frame_chunks`): check on real clips that no output changes, then record the new checksums.

    For models exported before the rewrite existed; `export` and `export-encoder` do it since.
    """
    content = load_manifest_content(models_dir)
    targets: list[tuple[ClassifierEntry | EncoderEntry, int]] = []
    for classifier in content.classifiers:
        family = FAMILIES.get(classifier.family or "")
        if family and family.frames_per_encoder_pass:
            targets.append((classifier, family.frames_per_encoder_pass))
    targets += [(encoder, FRAMES_PER_PASS) for encoder in content.encoders]
    results: dict[str, dict] = {}
    for entry, chunk in targets:
        path = models_dir / entry.file
        before = onnx.load(str(path))
        if is_chunked(before):
            results[entry.name] = {"rewritten": False}
            continue
        spec = entry.input.clip_spec()
        after = encode_in_chunks(before, spec.frames, chunk)
        clips = {entry.input_name: real_clips(data, spec, count=3).numpy()}
        expected = ort.InferenceSession(before.SerializeToString()).run(None, clips)
        actual = ort.InferenceSession(after.SerializeToString()).run(None, clips)
        diff = max(float(np.abs(e - a).max()) for e, a in zip(expected, actual, strict=True))
        if diff > CHUNKED_TOLERANCE:
            raise ParityError(f"{entry.name}: chunked outputs differ by {diff:.2e}")
        onnx.save(after, str(path))
        entry.sha256 = sha256_of(path)
        if isinstance(entry, EncoderEntry):
            entry.metrics["file_size_bytes"] = path.stat().st_size
            upsert_encoder(models_dir, entry)
        else:
            entry.metrics.file_size_bytes = path.stat().st_size
            upsert_classifier(models_dir, entry)
        results[entry.name] = {"rewritten": True, "max_abs_diff": diff, "sha256": entry.sha256}
    return results


def _run_split(state: dict, data: Path) -> Split:
    return prepare_split(saved_options(state, data))


def _eval_inputs(
    state: dict, records: list, spec: ClipSpec
) -> tuple[list[torch.Tensor], list[int]]:
    """The serving-path input tensor of each clip, and its class index."""
    labels = state["config"]["labels"]
    cache = ClipCache(Path(state["options"]["cache_dir"]), spec.resize_short)
    dataset = ClipDataset(records, labels, spec, cache, False)
    return [dataset[i][0] for i in range(len(dataset))], dataset.targets


def unseen_action_paths(data: Path, labels: list[str]) -> list[Path]:
    """Videos in `data/clips` whose action is none of `labels` (HMDB51, Kinetics, other UCF101)."""
    folder = data / "clips"
    return [
        path
        for path in (sorted(folder.iterdir()) if folder.is_dir() else [])
        if path.suffix.lower() in VIDEO_SUFFIXES
        and not any(f"_{lab}_" in path.name for lab in labels)
    ]


def _unseen_action_clips(data: Path, labels: list[str], spec: ClipSpec) -> list[torch.Tensor]:
    clips = []
    for path in unseen_action_paths(data, labels):
        frames, _ = read_sampled_frames(path, spec.frames, spec.resize_short, DecodeLimits())
        clips.append(torch.from_numpy(frames_to_input(frames, spec)[0]))
    return clips


def build_open_set(model: torch.nn.Module, state: dict, split: Split, spec: ClipSpec, data: Path):
    """Wrap the model with its classes' distance; choose and measure the open-set thresholds."""
    train_clips, train_targets = _eval_inputs(state, split.train, spec)
    distance = class_distance(embeddings(model, train_clips), train_targets)
    wrapped = OpenSetModel(model, distance).eval()

    def scores(clips: list[torch.Tensor], scorer: OpenSetModel = wrapped):  # distance, top-1
        if not clips:
            return np.zeros(0), np.zeros(0)
        with torch.no_grad():  # a few clips at a time: a whole test split at once fills memory
            outputs = [scorer(torch.stack(clips[i : i + 8])) for i in range(0, len(clips), 8)]
        logits = torch.cat([logit for logit, _ in outputs])
        distance = torch.cat([d for _, d in outputs])
        return distance.numpy(), torch.softmax(logits, 1).max(1).values.numpy()

    # A refit trained on the validation clips, so the thresholds come from the run it refits,
    # which did not: the same frozen embedding and class means, the same recipe's probabilities.
    calibration = wrapped
    if refit_from := state["options"].get("refit_from"):
        reference, _ = load_checkpoint(Path(refit_from))
        calibration = OpenSetModel(reference, distance).eval()
    val_scores = scores(_eval_inputs(state, split.val, spec)[0], calibration)
    threshold, min_top1 = choose_thresholds(*val_scores)
    test = is_confident(*scores(_eval_inputs(state, split.test, spec)[0]), threshold, min_top1)
    unseen_clips = _unseen_action_clips(data, state["config"]["labels"], spec)
    unseen = is_confident(*scores(unseen_clips), threshold, min_top1)
    summary = {
        "method": METHOD,
        "output_name": "ood_distance",
        "threshold": round(threshold, 6),
        "min_top1_probability": round(min_top1, 6),
        "test_in_class_confident": float(test.mean()),
        "unseen_action_clips": int(len(unseen)),
        "unseen_actions_flagged": float((~unseen).mean()) if len(unseen) else None,
    }
    return wrapped, summary


def update_open_set(run_dir: Path, out_dir: Path, data: Path, name: str | None = None) -> dict:
    """Recompute an exported model's open-set thresholds and numbers; the ONNX stays as it is
    (its outputs do not depend on the thresholds, which live in the manifest)."""
    model, state = load_checkpoint(run_dir)
    name = name or state["config"]["family"]
    spec = trained_clip_spec(state["config"])
    _, open_set = build_open_set(model, state, _run_split(state, Path(data)), spec, Path(data))
    (entry,) = [c for c in load_manifest_content(out_dir).classifiers if c.name == name]
    entry.open_set = OpenSetSpec.model_validate(open_set)
    upsert_classifier(out_dir, entry)
    return open_set


def export_classifier(
    run_dir: Path, out_dir: Path, data: Path, name: str | None = None, make_default: bool = False
) -> dict:
    """Write `<name>.onnx` and its manifest entry from the run's best checkpoint and metrics."""
    model, state = load_checkpoint(run_dir)
    family_name = state["config"]["family"]
    family = get_family(family_name)
    spec = trained_clip_spec(state["config"])
    name = name or family_name
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / f"{name}.onnx"
    split = _run_split(state, Path(data))
    wrapped, open_set = build_open_set(model, state, split, spec, Path(data))
    if isinstance(model, I3DEffNetTemporal):
        export_cascade_onnx(model, wrapped.distance, spec, onnx_path, family.int8_weights)
    else:
        export_onnx(wrapped, spec, onnx_path)
        if family.frames_per_encoder_pass:
            encode_file_in_chunks(onnx_path, spec.frames, family.frames_per_encoder_pass)
        if family.int8_weights:
            store_conv_weights_as_int8(onnx_path)
    test_clips = _eval_inputs(state, split.test[:: max(1, len(split.test) // 4)][:4], spec)[0]
    parity = check_parity(wrapped, onnx_path, torch.stack(test_clips))
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
        "open_set": open_set,
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
            "cpu_latency_ms": held_out_latency_ms(onnx_path, split.test, spec),
            "onnx_parity_max_abs_diff": parity,
        },
        "training": {
            "data": describe_clips(Path(data), split.train + split.val + split.test),
            "classes": state["config"]["labels"],
            "split": metrics["split"],
            "test_groups": metrics["test_groups"],
            "train_clips": metrics["train_clips"],
            "val_clips": metrics["val_clips"],
            "refit_from": options.get("refit_from") or None,
            "epochs": options["epochs"],
            "best_epoch": metrics["best_epoch"],
            "seed": options["seed"],
            "device": options.get("device", "cpu"),
            "cpu_cores": os.cpu_count(),
            "opset": OPSET,
            "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    }
    # Validated here, so that an entry the service would refuse fails the export instead.
    validated = ClassifierEntry.model_validate(entry)
    upsert_classifier(out_dir, validated, make_default)
    return validated.model_dump(mode="json")
