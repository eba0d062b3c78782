"""Image sets for style work: landscape photos, painters' sets, and frames of the action clips.

Video frames come from every class and follow the classifiers' split by UCF101 group (same actor
and background within a group): the test groups are held out for evaluation, the training and
validation groups may be trained on. Frames are cached as uint8 arrays under `.cache/styles/` so
every run sees the same ones.

    content = load_content(data_root, cache_dir)  # photos, train_frames, heldout_frames
    paintings = load_images(data_root / "styles" / "vangogh")
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from training.classify.clip_cache import decode_clip
from training.classify.ucf101 import ClipRecord, discover_clips, split_by_group

STYLES = {"vangogh": "Van Gogh", "ukiyoe": "ukiyo-e", "monet": "Monet", "cezanne": "Cezanne"}
FRAME_SIZE = (320, 240)  # (width, height) of UCF101 frames
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


@dataclass
class ContentSet:
    photos: np.ndarray  # (N, 256, 256, 3) uint8 RGB
    train_frames: np.ndarray  # (M, 240, 320, 3) uint8 RGB, clips of the training groups
    heldout_frames: np.ndarray  # (K, 240, 320, 3) uint8 RGB, clips of the held-out (test) groups


def image_paths(folder: Path) -> list[Path]:
    """The images of a folder, sorted by name (the order every image set is read in)."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)


def load_images(folder: Path, size: int | None = 256, limit: int = 0) -> np.ndarray:
    """All images of a folder (or one file), sorted by name, as (N, size, size, 3) uint8 RGB."""
    paths = [folder] if folder.is_file() else image_paths(folder)
    if limit:
        paths = paths[:limit]
    if not paths:
        raise FileNotFoundError(f"no images in {folder}")
    images = []
    for path in paths:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"cannot read image {path}")
        if size and bgr.shape[:2] != (size, size):
            bgr = cv2.resize(bgr, (size, size), interpolation=cv2.INTER_AREA)
        images.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return np.stack(images)


def sample_clip_frames(record: ClipRecord, count: int) -> list[np.ndarray]:
    """`count` frames spread evenly over a clip (a video or a frame folder), at 320x240."""
    frames = decode_clip(record)
    if not frames:
        return []
    picks = np.linspace(0, len(frames) - 1, count + 2)[1:-1].round().astype(int)
    out = []
    for i in picks:
        frame = frames[i]
        if (frame.shape[1], frame.shape[0]) != FRAME_SIZE:
            frame = cv2.resize(frame, FRAME_SIZE, interpolation=cv2.INTER_AREA)
        out.append(frame)
    return out


def video_frames(clips: list[ClipRecord], per_clip: int, limit_clips: int = 0) -> np.ndarray:
    """`per_clip` frames of each clip (of the first `limit_clips` in smoke runs)."""
    chosen = clips[:limit_clips] if limit_clips else clips
    frames = [f for clip in chosen for f in sample_clip_frames(clip, per_clip)]
    return np.stack(frames) if frames else np.zeros((0, 240, 320, 3), np.uint8)


def content_cache_path(
    cache_dir: Path, per_clip_train: int = 3, per_clip_heldout: int = 4, limit: int = 0
) -> Path:
    # "nine": the classifiers' group split over every class (earlier caches held two classes).
    return cache_dir / f"content_nine_{per_clip_train}_{per_clip_heldout}_{limit}.npz"


def load_content(
    data_root: Path,
    cache_dir: Path,
    per_clip_train: int = 3,
    per_clip_heldout: int = 4,
    limit: int = 0,
) -> ContentSet:
    """Photos plus frames of the training and held-out groups of every class (cached)."""
    cache = content_cache_path(cache_dir, per_clip_train, per_clip_heldout, limit)
    if cache.exists():
        with np.load(cache) as z:
            return ContentSet(z["photos"], z["train_frames"], z["heldout_frames"])
    clips = discover_clips(data_root)
    if not clips:
        raise FileNotFoundError(f"no UCF101 clips under {data_root}")
    split = split_by_group(clips)
    content = ContentSet(
        photos=load_images(data_root / "photos", limit=limit),
        train_frames=video_frames(split.train + split.val, per_clip_train, limit),
        heldout_frames=video_frames(split.test, per_clip_heldout, limit),
    )
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        cache,
        photos=content.photos,
        train_frames=content.train_frames,
        heldout_frames=content.heldout_frames,
    )
    return content
