"""Is the codec a cue? Each exported classifier on its held-out clips as stored, and re-encoded.

The data mixes codecs by class (six classes as H.264 MP4, YoYo and Punch as XviD AVI,
ApplyEyeMakeup as JPEG frame folders), and users upload anything. A model that learned "H.264
means one of the six" would pass its own test split and fail on the originals. So every held-out
clip is also re-encoded, through PyAV, as MPEG-4 Part 2 in AVI (what XviD writes), as H.264
in MP4 and as JPEG frames packed into an AVI (MJPEG; frame folders are packed into all three),
and each model classifies all four versions through onnxruntime on the serving path. The
figures go into the model's manifest entry.

    python -m training codec-check --data ../shared/data            # every exported classifier
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import onnxruntime as ort
from tqdm import tqdm

from service.contract.manifest import selected_classifiers, upsert_classifier
from service.video.decode import DecodeLimits, probe, read_sampled_frames
from service.video.preprocess import ClipSpec, frames_to_input, resize_short_side, sample_indices
from training.classify.clip_cache import read_frame_folder
from training.classify.ucf101 import ClipRecord, discover_clips, split_by_group


@dataclass(frozen=True)
class Transcode:
    name: str
    suffix: str
    codec: str
    options: dict[str, str]
    pix_fmt: str = "yuv420p"


# Bit rates near the originals': UCF101's XviD clips run at 300-700 kb/s at 320x240.
TRANSCODES = (
    Transcode("mpeg4_avi", ".avi", "mpeg4", {"b": "500k"}),
    Transcode("h264_mp4", ".mp4", "libx264", {"crf": "28", "preset": "veryfast"}),
    # JPEG frames in a video, at about the size of the ApplyEyeMakeup folders' JPEGs (~15 kB).
    Transcode("mjpeg_avi", ".avi", "mjpeg", {"b": "3M"}, pix_fmt="yuvj420p"),
)
FRAME_FOLDER_FPS = 25  # the folders hold 25 frames sampled across the clip; any rate will do


def source_frames(record: ClipRecord) -> tuple[list[np.ndarray], float]:
    """All RGB frames of a clip, and its frame rate."""
    if record.kind == "frames":
        return read_frame_folder(record.path), FRAME_FOLDER_FPS
    container = av.open(str(record.path))
    try:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or FRAME_FOLDER_FPS)
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    finally:
        container.close()
    return frames, fps


def encode_video(frames: list[np.ndarray], fps: float, target: Transcode, dest: Path) -> Path:
    """RGB `frames` written to `dest` as `target`, through a temporary file (never half)."""
    height, width = (d - d % 2 for d in frames[0].shape[:2])  # yuv420p needs even sides
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".tmp-{dest.name}")
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream(
            target.codec, rate=Fraction(fps).limit_denominator(1001), options=target.options
        )
        stream.width, stream.height, stream.pix_fmt = width, height, target.pix_fmt
        for frame in frames:
            video_frame = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(frame[:height, :width]), format="rgb24"
            )
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode())
    tmp.replace(dest)
    return dest


def transcode(record: ClipRecord, target: Transcode, out_dir: Path) -> Path:
    """`record` re-encoded as `target` (kept in `out_dir`, so every model reuses it)."""
    dest = out_dir / target.name / f"{record.label}__{record.name}{target.suffix}"
    if dest.exists():
        return dest
    return encode_video(*source_frames(record), target, dest)


def serving_input(source: Path | ClipRecord, spec: ClipSpec) -> np.ndarray:
    """The (1, 3, T, H, W) input the service builds for this clip."""
    if isinstance(source, ClipRecord) and source.kind == "frames":
        frames = read_frame_folder(source.path)
        chosen = [
            resize_short_side(frames[i], spec.resize_short)
            for i in sample_indices(len(frames), spec.frames)
        ]
        return frames_to_input(chosen, spec)
    path = source.path if isinstance(source, ClipRecord) else source
    limits = DecodeLimits()
    probe(path, limits)
    frames, _ = read_sampled_frames(path, spec.frames, spec.resize_short, limits)
    return frames_to_input(frames, spec)


def onnx_top1(session: ort.InferenceSession, inputs: list[np.ndarray], targets: list[int]) -> float:
    """Share of `inputs` (serving-path clips) the exported classifier puts in their class."""
    predicted = [int(session.run(["logits"], {"clip": x})[0].argmax()) for x in inputs]
    return float(np.mean(np.array(predicted) == np.array(targets)))


def held_out_clips(data: Path, name: str, labels: list[str], training: dict) -> list[ClipRecord]:
    """A model's test clips: its split, rebuilt, checked against the groups it recorded."""
    split = split_by_group(discover_clips(data, labels))
    recorded = set(training.get("test_groups", []))
    rebuilt = {c.group for c in split.test}
    if recorded and recorded != rebuilt:
        raise ValueError(
            f"{name}: the held-out groups of {data} differ from those it was tested on"
        )
    return split.test


def check_codecs(models_dir: Path, data: Path, cache_dir: Path, names: list[str] | None) -> dict:
    """Top-1 per model on held-out clips as stored and re-encoded; written into the manifest."""
    results = {}
    for entry in selected_classifiers(models_dir, names):
        spec = entry.input.clip_spec()
        session = ort.InferenceSession(
            str(models_dir / entry.file), providers=["CPUExecutionProvider"]
        )
        clips = held_out_clips(data, entry.name, entry.labels, entry.training)
        targets = [entry.labels.index(c.label) for c in clips]
        desc = f"{entry.name}: as stored"
        stored = [serving_input(c, spec) for c in tqdm(clips, desc=desc, unit="clip")]
        top1 = {"as_stored": onnx_top1(session, stored, targets)}
        for target in TRANSCODES:
            desc = f"{entry.name}: {target.name}"
            paths = [transcode(c, target, cache_dir) for c in tqdm(clips, desc=desc, unit="clip")]
            top1[target.name] = onnx_top1(session, [serving_input(p, spec) for p in paths], targets)
        gap = max(abs(top1[t.name] - top1["as_stored"]) for t in TRANSCODES)
        results[entry.name] = {
            "clips": len(clips),
            "top1": {k: round(v, 4) for k, v in top1.items()},
            "max_gap_points": round(100 * gap, 1),
        }
        entry.metrics.codec_check = results[entry.name]  # type: ignore[attr-defined]
        upsert_classifier(models_dir, entry)
        tqdm.write(json.dumps({entry.name: results[entry.name]}))
    return results
