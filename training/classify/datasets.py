"""Torch datasets over cached clips: augmented sampling for training, the serving path for eval.

train_set = ClipDataset(split.train, labels, spec, cache, train=True)
"""

from __future__ import annotations

import random

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from service.video.preprocess import ClipSpec, frames_to_input, normalise, sample_indices
from training.classify.clip_cache import ClipCache
from training.classify.ucf101 import ClipRecord


def random_segment_indices(total: int, count: int, rng: random.Random) -> list[int]:
    """One random frame from each of `count` equal segments (TSN-style temporal jitter)."""
    edges = np.linspace(0, total, count + 1)
    return [min(total - 1, int(rng.uniform(edges[i], edges[i + 1]))) for i in range(count)]


def random_crop_flip(frames: np.ndarray, crop: int, rng: random.Random) -> np.ndarray:
    """One random scale-jittered square crop, flip and colour for all (T, H, W, 3) frames."""
    height, width = frames.shape[1:3]
    side = int(min(height, width) * rng.uniform(0.75, 1.0))
    top, left = rng.randint(0, height - side), rng.randint(0, width - side)
    flip = rng.random() < 0.5
    out = []
    for frame in frames:
        patch = cv2.resize(frame[top : top + side, left : left + side], (crop, crop))
        out.append(patch[:, ::-1] if flip else patch)
    return codec_jitter(colour_jitter(np.stack(out), rng), rng)


def colour_jitter(frames: np.ndarray, rng: random.Random, strength: float = 0.25) -> np.ndarray:
    """One random brightness, contrast and per-channel gain for all frames of a clip."""
    brightness = rng.uniform(-strength, strength) * 255
    contrast = rng.uniform(1 - strength, 1 + strength)
    gains = np.array(
        [rng.uniform(1 - strength / 2, 1 + strength / 2) for _ in range(3)], np.float32
    )
    x = frames.astype(np.float32)
    x = (x - x.mean()) * contrast + x.mean() + brightness
    return np.clip(x * gains, 0, 255).astype(np.uint8)


def codec_jitter(frames: np.ndarray, rng: random.Random) -> np.ndarray:
    """Re-compress a clip's frames at a random strength, so that compression is never a cue.

    The data mixes codecs by class (H.264 CRF 30 for six classes, XviD for two, JPEG frames for
    one) and users upload anything: one random JPEG quality and softening per clip, applied to
    most clips, covers the blocking and blur of any of them.
    """
    if rng.random() < 0.2:
        return frames
    quality = rng.randint(20, 90)
    soften = rng.uniform(0.5, 1.0) if rng.random() < 0.5 else 1.0
    height, width = frames.shape[1:3]
    out = []
    for frame in frames:
        if soften < 1.0:  # a lower bit rate loses fine detail first
            small = cv2.resize(frame, (max(8, int(width * soften)), max(8, int(height * soften))))
            frame = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
        bgr = np.ascontiguousarray(frame[..., ::-1])  # JPEG's luma weights assume BGR order
        ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
        out.append(cv2.imdecode(encoded, cv2.IMREAD_COLOR)[..., ::-1] if ok else frame)
    return np.stack(out)


def augmenting_loader(
    dataset: Dataset, batch_size: int, workers: int, sampler: Sampler | None = None
) -> DataLoader:
    """Training batches in random order (or `sampler`'s), prepared in `workers` processes
    (0: in this one). Workers are spawned, not forked: a fork of a process whose thread pools
    (torch's, OpenCV's) already run can hang in the child."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        shuffle=sampler is None,
        num_workers=workers,
        persistent_workers=workers > 0,
        worker_init_fn=seed_loader_worker,
        multiprocessing_context="spawn" if workers else None,
    )


def seed_loader_worker(worker_id: int) -> None:
    """Give each loader process its own augmentation stream (each gets a copy of the dataset's
    `random.Random`, which would repeat the same draws in every worker) and one OpenCV thread."""
    info = torch.utils.data.get_worker_info()
    cv2.setNumThreads(1)
    info.dataset.rng.seed(info.seed)


class ClipDataset(Dataset):
    def __init__(
        self,
        records: list[ClipRecord],
        labels: list[str],
        spec: ClipSpec,
        cache: ClipCache,
        train: bool,
        seed: int = 0,
    ) -> None:
        self.records = records
        self.targets = [labels.index(r.label) for r in records]
        self.spec = spec
        self.cache = cache
        self.train = train
        self.rng = random.Random(seed)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        frames = self.cache.frames(self.records[i])
        if self.train:
            indices = random_segment_indices(len(frames), self.spec.frames, self.rng)
            clip = normalise(random_crop_flip(frames[indices], self.spec.crop, self.rng), self.spec)
        else:
            indices = sample_indices(len(frames), self.spec.frames)
            clip = frames_to_input([frames[j] for j in indices], self.spec)[0]
        return torch.from_numpy(np.ascontiguousarray(clip)), self.targets[i]
