"""Image sets for style work: landscape photos, painters' sets, and frames of the action clips.

Video frames are split by UCF101 group (same actor and background within a group): groups
g01-g03 are held out for evaluation, the rest may be trained on. Frames are cached as uint8
arrays under `.cache/styles/` so every run sees the same ones.

    content = load_content(data_root, cache_dir)  # photos, train_frames, heldout_frames
    paintings = load_images(data_root / "styles" / "vangogh")
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from service.video.decode import iter_frames

STYLES = {"vangogh": "Van Gogh", "ukiyoe": "ukiyo-e", "monet": "Monet", "cezanne": "Cezanne"}
HELDOUT_GROUPS = frozenset({1, 2, 3})
FRAME_SIZE = (320, 240)  # (width, height) of UCF101 frames
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


@dataclass
class ContentSet:
    photos: np.ndarray  # (N, 256, 256, 3) uint8 RGB
    train_frames: np.ndarray  # (M, 240, 320, 3) uint8 RGB, clips outside the held-out groups
    heldout_frames: np.ndarray  # (K, 240, 320, 3) uint8 RGB, clips of groups g01-g03


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


def clip_group(path: Path) -> int:
    match = re.search(r"_g(\d+)_c\d+", path.stem)
    if not match:
        raise ValueError(f"{path.name} is not named like v_<Class>_gNN_cMM")
    return int(match.group(1))


def sample_clip_frames(path: Path, count: int) -> list[np.ndarray]:
    """`count` frames spread evenly over the clip, each resized to 320x240."""
    frames = list(iter_frames(path))
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


def video_frames(
    clips: list[Path], per_clip: int, heldout: bool, limit_clips: int = 0
) -> np.ndarray:
    """Frames of the clips on one side of the group split."""
    chosen = [c for c in clips if (clip_group(c) in HELDOUT_GROUPS) == heldout]
    if limit_clips:
        chosen = chosen[:limit_clips]
    frames = [f for clip in chosen for f in sample_clip_frames(clip, per_clip)]
    return np.stack(frames) if frames else np.zeros((0, 240, 320, 3), np.uint8)


def content_cache_path(
    cache_dir: Path, per_clip_train: int = 3, per_clip_heldout: int = 4, limit: int = 0
) -> Path:
    return cache_dir / f"content_{per_clip_train}_{per_clip_heldout}_{limit}.npz"


def load_content(
    data_root: Path,
    cache_dir: Path,
    per_clip_train: int = 3,
    per_clip_heldout: int = 4,
    limit: int = 0,
) -> ContentSet:
    """Photos plus train/held-out video frames from `data_root/ucf101/*/*.avi` (cached)."""
    cache = content_cache_path(cache_dir, per_clip_train, per_clip_heldout, limit)
    if cache.exists():
        with np.load(cache) as z:
            return ContentSet(z["photos"], z["train_frames"], z["heldout_frames"])
    clips = sorted((data_root / "ucf101").glob("*/*.avi"))
    if not clips:
        raise FileNotFoundError(f"no clips under {data_root / 'ucf101'}")
    content = ContentSet(
        photos=load_images(data_root / "photos", limit=limit),
        train_frames=video_frames(clips, per_clip_train, heldout=False, limit_clips=limit),
        heldout_frames=video_frames(clips, per_clip_heldout, heldout=True, limit_clips=limit),
    )
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        cache,
        photos=content.photos,
        train_frames=content.train_frames,
        heldout_frames=content.heldout_frames,
    )
    return content
