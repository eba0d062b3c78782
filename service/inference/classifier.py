"""Recognise the action in a video file with one exported ONNX classifier.

A plain function, shared by the HTTP route and the Celery task:

    classifier = load_classifier(models_dir, entry, intra_op_threads=1)
    result = classify(Path("clip.avi"), classifier, top_k=3, limits=DecodeLimits())
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from service.inference.manifest import ClassifierEntry, ManifestError, read_verified
from service.inference.schemas import ClassifyResponse, Prediction, Timings, VideoSummary
from service.video.decode import DecodeLimits, read_sampled_frames
from service.video.preprocess import ClipSpec, frames_to_input

DEFAULT_TOP_K = 5


class InvalidTopK(ValueError):
    """top_k is outside 1..number of labels of the chosen model."""


@dataclass(frozen=True)
class Classifier:
    entry: ClassifierEntry
    spec: ClipSpec
    session: ort.InferenceSession

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def labels(self) -> list[str]:
        return self.entry.labels


def _session_options(intra_op_threads: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Requests come and go; idle threads that spin would steal CPU from decoding and other work.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def _check_signature(entry: ClassifierEntry, session: ort.InferenceSession) -> None:
    """Refuse a model whose graph does not match what its manifest entry promises."""
    inputs = {node.name: node for node in session.get_inputs()}
    outputs = {node.name: node for node in session.get_outputs()}
    problem = None
    if entry.input_name not in inputs:
        problem = f"has no input '{entry.input_name}' (inputs: {sorted(inputs)})"
    elif entry.output_name not in outputs:
        problem = f"has no output '{entry.output_name}' (outputs: {sorted(outputs)})"
    else:
        spec = entry.input
        expected = (None, 3, spec.frames, spec.crop, spec.crop)
        shape = inputs[entry.input_name].shape
        out_shape = outputs[entry.output_name].shape
        fixed = [(dim, want) for dim, want in zip(shape, expected, strict=False) if want]
        if len(shape) != 5 or any(isinstance(dim, int) and dim != want for dim, want in fixed):
            problem = f"takes input of shape {shape}, but the manifest describes {expected}"
        elif isinstance(out_shape[-1], int) and out_shape[-1] != len(entry.labels):
            problem = f"outputs {out_shape[-1]} scores, but the manifest lists {len(entry.labels)}"
    if problem:
        raise ManifestError(f"model '{entry.name}' ({entry.file}) {problem}")


def load_classifier(models_dir: Path, entry: ClassifierEntry, intra_op_threads: int) -> Classifier:
    """Verify the entry's file and open one onnxruntime session for it."""
    data = read_verified(models_dir, entry)
    try:
        session = ort.InferenceSession(
            data, _session_options(intra_op_threads), providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own untyped errors for bad graphs
        raise ManifestError(
            f"model '{entry.name}': onnxruntime cannot load {entry.file}: {exc}"
        ) from exc
    _check_signature(entry, session)
    return Classifier(entry=entry, spec=entry.input.clip_spec(), session=session)


def resolve_top_k(top_k: int | None, classifier: Classifier) -> int:
    """The number of predictions to return: the default clamps, an explicit value must fit."""
    count = len(classifier.labels)
    if top_k is None:
        return min(DEFAULT_TOP_K, count)
    if not 1 <= top_k <= count:
        raise InvalidTopK(
            f"top_k must be between 1 and {count} for model '{classifier.name}', got {top_k}"
        )
    return top_k


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits.astype(np.float64) - logits.max()
    weights = np.exp(shifted)
    return weights / weights.sum()


def classify(
    path: Path, classifier: Classifier, top_k: int, limits: DecodeLimits
) -> ClassifyResponse:
    """The `top_k` most likely actions in the video at `path`, most likely first."""
    spec = classifier.spec
    started = time.perf_counter()
    frames, info = read_sampled_frames(path, spec.frames, spec.resize_short, limits)
    batch = frames_to_input(frames, spec)
    decoded = time.perf_counter()
    (logits,) = classifier.session.run(
        [classifier.entry.output_name], {classifier.entry.input_name: batch}
    )
    finished = time.perf_counter()
    scores = softmax(logits[0])
    order = np.argsort(-scores, kind="stable")[:top_k]
    return ClassifyResponse(
        model=classifier.name,
        predictions=[Prediction(label=classifier.labels[i], score=float(scores[i])) for i in order],
        video=VideoSummary(
            duration_s=round(info.duration_s, 3),
            fps=round(info.fps, 3),
            frames=info.frames,
            width=info.width,
            height=info.height,
        ),
        timings_ms=Timings(
            decode=round((decoded - started) * 1000, 2),
            inference=round((finished - decoded) * 1000, 2),
            total=round((finished - started) * 1000, 2),
        ),
    )
