"""Decode each clip once, keep its frames on disk, and serve them to every later epoch.

Frames are stored after `resize_short_side` (the first step of the serving pipeline), as one
uint8 `.npy` per clip, memory-mapped when read.

    cache = ClipCache(Path(".cache/clips"), resize_short=128)
    frames = cache.frames(record)  # (N, H, W, 3) uint8 RGB
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from service.video.decode import DecodeLimits, iter_frames
from service.video.preprocess import bgr_to_rgb, resize_short_side
from training.classify.ucf101 import FRAME_SUFFIXES, ClipRecord


def read_frame_folder(folder: Path) -> list[np.ndarray]:
    """The images of a frame-folder clip, in name order, as RGB."""
    files = sorted(f for f in folder.iterdir() if f.suffix.lower() in FRAME_SUFFIXES)
    frames = []
    for f in files:
        image = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"cannot read frame {f}")
        frames.append(bgr_to_rgb(image))
    return frames


def decode_clip(record: ClipRecord) -> list[np.ndarray]:
    if record.kind == "frames":
        return read_frame_folder(record.path)
    return list(iter_frames(record.path, DecodeLimits(max_duration_s=3600, max_frames=200_000)))


class ClipCache:
    def __init__(self, directory: Path, resize_short: int) -> None:
        self.directory = Path(directory)
        self.resize_short = resize_short
        self.directory.mkdir(parents=True, exist_ok=True)

    def _prefix(self, record: ClipRecord) -> str:
        """One per source clip and size: names repeat across classes (frame folders)."""
        source = f"{record.path.resolve()}|{self.resize_short}"
        return f"{record.name}-{hashlib.sha1(source.encode()).hexdigest()[:12]}"

    def _path(self, record: ClipRecord) -> Path:
        stat = record.path.stat()
        version = hashlib.sha1(f"{stat.st_mtime_ns}|{stat.st_size}".encode()).hexdigest()[:8]
        return self.directory / f"{self._prefix(record)}-{version}.npy"

    def frames(self, record: ClipRecord) -> np.ndarray:
        path = self._path(record)
        if not path.exists():
            # A source touched since (the data copied again) leaves its old decode behind:
            # gone, or every fresh copy of the data adds a whole second cache.
            for stale in self.directory.glob(f"{self._prefix(record)}-*.npy"):
                stale.unlink(missing_ok=True)
            frames = [resize_short_side(f, self.resize_short) for f in decode_clip(record)]
            if not frames:
                raise ValueError(f"{record.path} has no decodable frame")
            # One temporary file per writer (loader workers may decode the same clip at once),
            # hidden from the stale-file glob above; the rename is atomic, so an interrupted run
            # never leaves a half-written clip.
            writer = f"{os.getpid()}-{threading.get_ident()}"
            tmp = path.with_name(f".{path.stem}.{writer}.tmp.npy")
            np.save(tmp, np.stack(frames))
            tmp.replace(path)
        return np.load(path, mmap_mode="r")

    def warm(self, records: list[ClipRecord]) -> None:
        for record in tqdm(records, desc="caching decoded clips", unit="clip"):
            self.frames(record)
