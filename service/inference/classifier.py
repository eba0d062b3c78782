"""Recognise the action in a video file with one exported ONNX classifier.

A plain function, shared by the HTTP route and the Celery task:

    classifier = load_classifier(models_dir, entry, intra_op_threads=1)
    result = classify(Path("clip.avi"), classifier, top_k=3, limits=DecodeLimits())

A classifier runs on onnxruntime, or on OpenVINO where the settings ask
(`ACTIONSTYLE_OPENVINO_CLASSIFIERS`): bfloat16 on CPUs with bfloat16 units, every shipped model
1.3-2.3x faster a clip on an AMD EPYC with avx512_bf16 with the same top-1 and `confident`
verdicts on 484 clips, but the default alone ~165 MiB more resident (docs/benchmarks.md).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import onnxruntime as ort

from service.contract.manifest import ClassifierEntry, ManifestError, verified_path
from service.inference.memory import release_freed_heap, use_arena
from service.inference.networks import OpenVinoNetwork
from service.inference.providers import execution_providers
from service.inference.schemas import ClassifyResponse, Prediction, Segment, Timings, VideoSummary
from service.video.decode import DecodeLimits, VideoInfo, probe, read_frame_groups
from service.video.preprocess import ClipSpec, frames_to_input, sample_indices

if TYPE_CHECKING:
    from service.settings import MemoryArena

DEFAULT_TOP_K = 5
UNKNOWN_LABEL = "unknown"
MAX_SEGMENTS = 600
ASSUMED_FPS = 25.0  # for containers that do not say

logger = logging.getLogger(__name__)


class TooManySegments(ValueError):
    """window_s is so short the video would make more segments than allowed."""


class InvalidTopK(ValueError):
    """top_k is outside 1..number of labels of the chosen model."""


class ClassifierSession(Protocol):
    """What a classifier runs on: onnxruntime's session, or `OpenVinoSession`."""

    def run(
        self, output_names: list[str], input_feed: dict[str, np.ndarray]
    ) -> list[np.ndarray]: ...


class OpenVinoSession:
    """A classifier compiled by OpenVINO, called as an onnxruntime session is."""

    def __init__(self, network: OpenVinoNetwork) -> None:
        self.network = network

    def run(self, output_names: list[str], input_feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.network.run_outputs(input_feed, list(output_names))


@dataclass(frozen=True)
class Classifier:
    entry: ClassifierEntry
    spec: ClipSpec
    session: ClassifierSession
    threshold: float | None = None  # open-set distance threshold; None: always confident
    min_top1: float | None = None  # below this top-1 probability: not confident; None: no floor

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def labels(self) -> list[str]:
        return self.entry.labels


def session_options(intra_op_threads: int, arena: MemoryArena) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Requests come and go; idle threads that spin would steal CPU from decoding and other work.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # The memory pattern reserves one block per input shape for the whole graph's tensors on top
    # of what the arena keeps; with an arena, allocating tensor by tensor is as fast (measured).
    options.enable_mem_pattern = False
    use_arena(options, arena)
    return options


Shapes = dict[str, list]  # input or output name -> its dimensions (names or None when dynamic)


def _check_signature(entry: ClassifierEntry, inputs: Shapes, outputs: Shapes) -> None:
    """Refuse a model whose graph does not match what its manifest entry promises."""
    problem = None
    if entry.input_name not in inputs:
        problem = f"has no input '{entry.input_name}' (inputs: {sorted(inputs)})"
    elif entry.output_name not in outputs:
        problem = f"has no output '{entry.output_name}' (outputs: {sorted(outputs)})"
    elif entry.open_set and entry.open_set.output_name not in outputs:
        problem = (
            f"has no open-set output '{entry.open_set.output_name}' (outputs: {sorted(outputs)})"
        )
    else:
        spec = entry.input
        expected = (None, 3, spec.frames, spec.crop, spec.crop)
        shape = inputs[entry.input_name]
        out_shape = outputs[entry.output_name]
        fixed = [(dim, want) for dim, want in zip(shape, expected, strict=False) if want]
        if len(shape) != 5 or any(isinstance(dim, int) and dim != want for dim, want in fixed):
            problem = f"takes input of shape {shape}, but the manifest describes {expected}"
        elif isinstance(out_shape[-1], int) and out_shape[-1] != len(entry.labels):
            problem = f"outputs {out_shape[-1]} scores, but the manifest lists {len(entry.labels)}"
    if problem:
        raise ManifestError(f"model '{entry.name}' ({entry.file}) {problem}")


def load_classifier(
    models_dir: Path,
    entry: ClassifierEntry,
    intra_op_threads: int,
    threshold_override: float | None = None,
    min_top1_override: float | None = None,
    arena: MemoryArena = "shared",
    openvino: bool = False,
    concurrent: int = 1,
) -> Classifier:
    """Verify the entry's file and open it on onnxruntime, or on OpenVINO when `openvino` (ready
    for `concurrent` calls at once, each on `intra_op_threads` threads, 0: every core)."""
    path = verified_path(models_dir, entry)
    session = _openvino_session(entry, path, intra_op_threads, concurrent) if openvino else None
    if session is None:
        session = _onnxruntime_session(entry, path, intra_op_threads, arena)
    threshold = entry.open_set.threshold if entry.open_set else None
    min_top1 = entry.open_set.min_top1_probability if entry.open_set else None
    if threshold_override is not None and entry.open_set:
        threshold = threshold_override
    if min_top1_override is not None and entry.open_set:
        min_top1 = min_top1_override
    return Classifier(entry, entry.input.clip_spec(), session, threshold, min_top1)


def _onnxruntime_session(
    entry: ClassifierEntry, path: Path, intra_op_threads: int, arena: MemoryArena
) -> ort.InferenceSession:
    options = session_options(intra_op_threads, arena)
    try:
        session = ort.InferenceSession(str(path), options, providers=execution_providers())
    except Exception as exc:  # onnxruntime raises its own untyped errors for bad graphs
        raise ManifestError(
            f"model '{entry.name}': onnxruntime cannot load {entry.file}: {exc}"
        ) from exc
    _check_signature(
        entry,
        {node.name: node.shape for node in session.get_inputs()},
        {node.name: node.shape for node in session.get_outputs()},
    )
    return session


def _openvino_session(
    entry: ClassifierEntry, path: Path, intra_op_threads: int, concurrent: int
) -> OpenVinoSession | None:
    """The classifier compiled by OpenVINO; None, with a warning, where OpenVINO cannot compile it
    (onnxruntime then runs it, and says what is wrong with a broken file)."""
    threads = intra_op_threads or os.cpu_count() or 1
    try:
        network = OpenVinoNetwork(path, threads, concurrent)
    except RuntimeError as error:
        logger.warning(
            "OpenVINO cannot compile model '%s'; onnxruntime runs it: %s", entry.name, error
        )
        return None
    _check_signature(entry, network.input_shapes, network.output_shapes)
    return OpenVinoSession(network)


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


def verdict(classifier: Classifier, logits: np.ndarray, distance: float | None, top_k: int) -> dict:
    scores = softmax(logits)
    order = np.argsort(-scores, kind="stable")[:top_k]
    predictions = [Prediction(label=classifier.labels[i], score=float(scores[i])) for i in order]
    threshold, min_top1 = classifier.threshold, classifier.min_top1
    near_a_known_action = distance is None or threshold is None or distance <= threshold
    decided = min_top1 is None or float(scores[order[0]]) >= min_top1
    confident = near_a_known_action and decided
    return {
        "predictions": predictions,
        "confident": confident,
        "top_label": predictions[0].label if confident else UNKNOWN_LABEL,
        "ood_distance": None if distance is None else round(float(distance), 6),
    }


def _run(
    classifier: Classifier, groups: list[list[np.ndarray]]
) -> tuple[np.ndarray, np.ndarray | None]:
    """Logits and, for models with an open-set output, distances of each group of frames.

    One group per onnxruntime call. Batching the windows of a long video is no faster on CPU,
    and onnxruntime's arena keeps the largest call's working memory for good: 16 windows of the
    default model at once left the process 1.5 GB resident after one request (one at a time:
    what a plain request needs).
    """
    entry = classifier.entry
    outputs = [entry.output_name] + ([entry.open_set.output_name] if entry.open_set else [])
    results = [
        classifier.session.run(outputs, {entry.input_name: frames_to_input(group, classifier.spec)})
        for group in groups
    ]
    logits = np.concatenate([result[0] for result in results])
    return logits, None if entry.open_set is None else np.concatenate([r[1] for r in results])


def segment_bounds(total: int, fps: float, window_s: float) -> list[tuple[int, int]]:
    """[start, end) frame ranges of `window_s` seconds; a last piece under half a window joins
    the one before it."""
    window = max(1, round(window_s * (fps or ASSUMED_FPS)))
    bounds = [(start, min(total, start + window)) for start in range(0, total, window)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < window / 2:
        bounds[-2:] = [(bounds[-2][0], total)]
    return bounds


def _check_decoded_size(
    groups: list[list[int]],
    info: VideoInfo,
    resize_short: int,
    limits: DecodeLimits,
    window_s: float,
) -> None:
    """Refuse a plan whose decoded frames would hold more memory than one request may."""
    short, long = sorted((max(1, info.width), max(1, info.height)))
    frame_bytes = resize_short * round(resize_short * long / short) * 3
    frames = len({i for group in groups for i in group})
    if frames * frame_bytes > limits.max_decoded_bytes:
        raise TooManySegments(
            f"window_s={window_s} needs {frames} decoded frames of this video (about "
            f"{frames * frame_bytes / 2**20:.0f} MB), more than the "
            f"{limits.max_decoded_bytes / 2**20:.0f} MB one request may hold; "
            "choose a longer window"
        )


def classify(
    path: Path,
    classifier: Classifier,
    top_k: int,
    limits: DecodeLimits,
    window_s: float | None = None,
    inference_slots: threading.Semaphore | None = None,
) -> ClassifyResponse:
    """The `top_k` most likely actions in the video at `path`, most likely first.

    With `window_s`, also one answer per window of that many seconds; every frame any answer
    needs is decoded in the same single pass. With `inference_slots`, inference waits for a slot
    (decoding does not), so concurrent requests do not each grow onnxruntime's working memory.
    """
    spec = classifier.spec
    started = time.perf_counter()
    reported = probe(path, limits)
    fps = reported.fps
    bounds: list[tuple[int, int]] = []

    def plan(total: int) -> list[list[int]]:
        bounds[:] = segment_bounds(total, fps, window_s) if window_s else []
        if len(bounds) > MAX_SEGMENTS:
            raise TooManySegments(
                f"window_s={window_s} cuts this video into {len(bounds)} segments, more than "
                f"{MAX_SEGMENTS}; choose a longer window"
            )
        whole = sample_indices(total, spec.frames)
        groups = [whole] + [[a + i for i in sample_indices(b - a, spec.frames)] for a, b in bounds]
        if window_s:
            _check_decoded_size(groups, reported, spec.resize_short, limits, window_s)
        return groups

    groups, info = read_frame_groups(path, plan, spec.resize_short, limits)
    decoded = time.perf_counter()
    with inference_slots or nullcontext():
        logits, distances = _run(classifier, groups)
    finished = time.perf_counter()
    del groups  # the decoded frames: freed in pieces glibc would otherwise keep resident
    release_freed_heap()
    distance_of = (lambda i: None) if distances is None else (lambda i: float(distances[i]))
    seconds = (lambda frame: frame / info.fps) if info.fps else (lambda frame: frame / ASSUMED_FPS)
    segments = None
    if window_s:
        segments = [
            Segment(
                start_s=round(seconds(a), 3),
                end_s=round(seconds(b), 3),
                **verdict(classifier, logits[i + 1], distance_of(i + 1), top_k),
            )
            for i, (a, b) in enumerate(bounds)
        ]
    return ClassifyResponse(
        model=classifier.name,
        **verdict(classifier, logits[0], distance_of(0), top_k),
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
        segments=segments,
    )
