"""Per-frame features of clips from the frozen encoder in `exported_models/encoders/`.

The input is built by service.video.preprocess exactly as for the shipped EfficientNet model.

    encoder = load_encoder(models_dir, manifest, intra_op_threads=1)
    features = clip_features(encoder, Path("clip.avi"), DecodeLimits())  # (2, T, D)
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnxruntime as ort

from service.contract.manifest import EncoderEntry, ManifestContent, ManifestError, verified_path
from service.inference.classifier import session_options
from service.inference.providers import execution_providers
from service.video.decode import DecodeLimits, read_sampled_frames
from service.video.preprocess import ClipSpec, frames_to_input

if TYPE_CHECKING:
    from service.settings import MemoryArena


class EncoderMissing(RuntimeError):
    """The installed models hold no feature encoder, so no classifier can be taught."""


@dataclass(frozen=True)
class Encoder:
    entry: EncoderEntry
    spec: ClipSpec
    session: ort.InferenceSession

    def features(self, batch: np.ndarray) -> np.ndarray:
        """(B, 3, T, H, W) model input -> (B, T, D) per-frame features."""
        entry = self.entry
        return self.session.run([entry.output_name], {entry.input_name: batch})[0]


class LazyEncoder:
    """An encoder loaded on first use, once, however many threads ask at the same moment."""

    def __init__(self, load: Callable[[], Encoder]) -> None:
        self._load, self._lock = load, threading.Lock()
        self._encoder: Encoder | None = None

    def __call__(self) -> Encoder:
        with self._lock:
            if self._encoder is None:
                self._encoder = self._load()
            return self._encoder


def encoder_entry(manifest: ManifestContent) -> EncoderEntry:
    if not manifest.encoders:
        raise EncoderMissing(
            "this server has no feature encoder installed, so it cannot learn new actions; "
            "export one with `python -m training export-encoder`"
        )
    return manifest.encoders[0]


def load_encoder(
    models_dir: Path,
    manifest: ManifestContent,
    intra_op_threads: int,
    arena: MemoryArena = "shared",
) -> Encoder:
    """Verify the manifest's encoder file and open one onnxruntime session for it."""
    entry = encoder_entry(manifest)
    path = verified_path(models_dir, entry)
    try:
        session = ort.InferenceSession(
            str(path), session_options(intra_op_threads, arena), providers=execution_providers()
        )
    except Exception as exc:  # onnxruntime raises its own untyped errors for bad graphs
        raise ManifestError(f"encoder '{entry.name}': onnxruntime cannot load it: {exc}") from exc
    return Encoder(entry, entry.input.clip_spec(), session)


def clip_features(encoder: Encoder, path: Path, limits: DecodeLimits) -> np.ndarray:
    """(2, T, D) features of the clip's sampled frames, as decoded and mirrored left-right."""
    spec = encoder.spec
    frames, _ = read_sampled_frames(path, spec.frames, spec.resize_short, limits)
    mirrored = [np.ascontiguousarray(frame[:, ::-1]) for frame in frames]
    batch = np.concatenate([frames_to_input(frames, spec), frames_to_input(mirrored, spec)])
    return encoder.features(batch)
