"""Training-time augmentation: compression must not be a cue."""

import random

import cv2
import numpy as np
import torch

from service.video.preprocess import ClipSpec
from tests.utils.data import SHARED_DATA, UCF101
from training.classify.clip_cache import ClipCache
from training.classify.datasets import ClipDataset, augmenting_loader, codec_jitter
from training.classify.ucf101 import discover_clips


def _real_frames() -> np.ndarray:
    capture = cv2.VideoCapture(str(sorted((UCF101 / "Archery").glob("*.mp4"))[0]))
    frames = []
    while len(frames) < 8:
        ok, frame = capture.read()
        assert ok
        frames.append(cv2.cvtColor(cv2.resize(frame, (112, 112)), cv2.COLOR_BGR2RGB))
    return np.stack(frames)


def test_codec_jitter_recompresses_most_clips_and_keeps_the_picture() -> None:
    frames = _real_frames()
    rng = random.Random(0)
    changed = 0
    for _ in range(50):
        out = codec_jitter(frames, rng)
        assert out.shape == frames.shape and out.dtype == np.uint8
        difference = np.abs(out.astype(int) - frames).mean()
        assert difference < 12  # compression noise, not another picture
        # colours stay in their channels (RGB is not swapped by the BGR codec)
        assert np.abs(out.mean((0, 1, 2)) - frames.mean((0, 1, 2))).max() < 4
        changed += difference > 0
    assert 30 <= changed <= 48  # about 80 % of clips are re-compressed


def test_loader_workers_draw_different_augmentations(tmp_path) -> None:
    """Each worker process gets a copy of the dataset's generator; without its own seed every
    worker would repeat the same crops, flips and colours."""
    record = discover_clips(SHARED_DATA, ["Punch"])[0]
    spec = ClipSpec()
    cache = ClipCache(tmp_path, spec.resize_short)
    dataset = ClipDataset([record] * 4, ["Punch"], spec, cache, True)
    loader = augmenting_loader(dataset, batch_size=1, workers=2)
    first_of_each_worker = [x for x, _ in loader][:2]  # one from worker 0, one from worker 1
    assert not torch.equal(*first_of_each_worker)
