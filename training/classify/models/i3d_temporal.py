"""Kinetics-400 I3D, frozen, + the default's temporal heads: a video-pretrained encoder.

EfficientNet-Lite0 (the `effnet_temporal` default) saw ImageNet photos; I3D saw Kinetics-400
actions, motion included. Here its last map, averaged over space, is one 1024-wide feature per
8 input frames, and the same five attention heads average over those steps. Trained by the
frozen-feature loop (training/classify/frozen_features.py), which caches the features.

    model = i3d_temporal(num_classes=9)  # (B, 3, 16, 224, 224) in [-1, 1] -> (B, 9)
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from service.video.preprocess import ClipSpec
from training.classify.int8_weights import round_conv_weights
from training.classify.models.effnet_temporal import (
    DEFAULT_HEADS,
    HeadEnsemble,
    TemporalHeadConfig,
)
from training.i3d import FEATURE_WIDTH, i3d_kinetics400

# Kinetics I3D takes pixels in [-1, 1]; 16 frames give two feature steps.
I3D_CLIP_SPEC = ClipSpec(frames=16, resize_short=224, crop=224, mean=(0.5,) * 3, std=(0.5,) * 3)


class I3DTemporal(nn.Module):
    """Frozen Kinetics-400 I3D -> (B, T/8, 1024) features -> temporal heads.

    It offers what the frozen-feature loop and the export ask of `EffNetTemporal`: the cached
    "maps" are the features themselves, as nothing above the trunk is tuned."""

    tuned_top = None

    def __init__(self, head: HeadEnsemble, weights: Path | None) -> None:
        super().__init__()
        # Rounded to the int8 grid its ONNX file stores (12 MB rather than 49).
        self.encoder = round_conv_weights(i3d_kinetics400(weights))
        self.head = head

    def frame_maps(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, T, H, W) -> (B, T/8, 1024)
        return self.encoder.features(x).transpose(1, 2)

    def features_from_maps(self, maps: torch.Tensor) -> torch.Tensor:
        return maps

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.frame_maps(x)

    def logits_and_ood_embedding(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits, and the frozen Kinetics features averaged over time for the open-set
        distance (no training has pulled them towards the known classes)."""
        features = self.frame_features(x)
        return self.head(features), features.mean(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.frame_features(x))


def i3d_temporal(
    num_classes: int, weights: Path | None = None, heads: int = DEFAULT_HEADS
) -> I3DTemporal:
    head = HeadEnsemble(TemporalHeadConfig(), num_classes, heads, in_features=FEATURE_WIDTH)
    return I3DTemporal(head, weights)
