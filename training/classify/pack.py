"""A compact copy of the training and validation clips, to train on a machine without the data.

A GPU machine takes a few tens of MB along, not the data root: each clip is resized to the
serving pipeline's short side and written again under the same layout and name, videos as H.264
MP4 and frame folders as JPEG frames. Held-out clips are left out; their names go into
`ucfTrainTestlist/testlist01.txt` (frame folders keep their subsets file), so that
`split_by_group` on the copy finds the same training and validation groups as on the original,
which `pack_clips` checks before it returns.

    python -m training pack-clips --data ../shared/data --out runs/packed
"""

from __future__ import annotations

import multiprocessing
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from service.video.preprocess import resize_short_side
from training.classify.clip_cache import read_frame_folder
from training.classify.codec_check import Transcode, encode_video, source_frames
from training.classify.ucf101 import (
    FRAME_SUFFIXES,
    ClipRecord,
    Split,
    discover_clips,
    split_by_group,
)

# Visually lossless at 128 px: training re-compresses most clips at random anyway
# (datasets.codec_jitter), so the copy's codec is no cue either.
PACKED_VIDEO = Transcode("h264_mp4", ".mp4", "libx264", {"crf": "23", "preset": "medium"})
PACKED_JPEG_QUALITY = 90


def _packed_path(record: ClipRecord, data: Path, out: Path) -> Path:
    relative = record.path.relative_to(data)
    return out / (relative.with_suffix(PACKED_VIDEO.suffix) if record.kind == "video" else relative)


def _pack_one(record: ClipRecord, dest: Path, short_side: int) -> int:
    """Write one clip's copy; returns its size in bytes."""
    if record.kind == "video":
        frames, fps = source_frames(record)
        small = [resize_short_side(f, short_side) for f in frames]
        return encode_video(small, fps, PACKED_VIDEO, dest).stat().st_size
    tmp = dest.with_name(f".tmp-{dest.name}")  # renamed when whole: a rerun skips only those
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    names = sorted(f.name for f in record.path.iterdir() if f.suffix.lower() in FRAME_SUFFIXES)
    size = 0
    for name, frame in zip(names, read_frame_folder(record.path), strict=True):
        bgr = np.ascontiguousarray(resize_short_side(frame, short_side)[..., ::-1])
        ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, PACKED_JPEG_QUALITY])
        if not ok:
            raise ValueError(f"cannot encode a frame of {record.path}")
        (tmp / Path(name).with_suffix(".jpg")).write_bytes(encoded.tobytes())
        size += len(encoded)
    tmp.rename(dest)
    return size


def _write_split_files(split: Split, data: Path, out: Path) -> None:
    """Name the left-out held-out videos; copy the frame folders' subsets files."""
    held_out_by_root: dict[Path, list[str]] = {}
    for record in split.test:
        if record.kind == "video":
            video_root = record.path.parents[1]
            held_out_by_root.setdefault(video_root, []).append(f"{record.label}/{record.path.name}")
    for video_root, names in held_out_by_root.items():
        testlist = out / video_root.relative_to(data) / "ucfTrainTestlist" / "testlist01.txt"
        testlist.parent.mkdir(parents=True, exist_ok=True)
        testlist.write_text("\n".join(sorted(names)) + "\n")
    for class_dir in {r.path.parent for r in split.train + split.val if r.kind == "frames"}:
        subsets = class_dir.parent / f"{class_dir.name}_subsets.txt"
        if subsets.is_file():
            shutil.copy(subsets, out / subsets.relative_to(data))


def _sides(split: Split) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    key = lambda r: (r.label, r.name, r.group)  # noqa: E731
    return sorted(map(key, split.train)), sorted(map(key, split.val))


def pack_clips(
    data: Path, out: Path, short_side: int = 128, classes: list[str] | None = None, workers: int = 2
) -> dict:
    """Copy the training and validation clips of `data` into `out` (see the module's doc)."""
    data, out = Path(data), Path(out)
    split = split_by_group(discover_clips(data, classes))
    kept = split.train + split.val
    to_pack = [(r, dest) for r in kept if not (dest := _packed_path(r, data, out)).exists()]
    # Spawned, not forked: a fork copies the caller's locks in whatever state its other threads
    # left them (the test session's onnxruntime, OpenVINO and Redis threads), and a worker that
    # inherits a held one waits for ever (a dry run of CI hung so, past the test timeout).
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=spawn) as pool:
        jobs = [pool.submit(_pack_one, r, dest, short_side) for r, dest in to_pack]
        for job in tqdm(jobs, desc="packing clips", unit="clip"):
            job.result()
    _write_split_files(split, data, out)
    if _sides(split_by_group(discover_clips(out, classes))) != _sides(split):
        raise RuntimeError(f"{out} splits differently from {data}: delete it and pack again")
    return {
        "out": str(out),
        "clips": len(kept),
        "held_out_left_out": len(split.test),
        "bytes": sum(f.stat().st_size for f in out.rglob("*") if f.is_file()),
    }
