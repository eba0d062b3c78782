"""Both frozen encoders on one input: Kinetics-400 I3D and ImageNet EfficientNet-Lite0.

I3D (the default since 2026-12-07) and Lite0 (the default before it) err on different clips:
I3D on YoYo and Punch, Lite0 on Archery. Here each keeps its own five temporal attention heads
and the answer is the mean of the two branches' log-probabilities. One input, I3D's: 16 frames
at 224 px in [-1, 1]; Lite0 sees the 8 odd-numbered of them, normalised its own way. The open-set
embedding is I3D's, as the I3D model's was. Trained by training/classify/fusion_training.py;
chosen by group CV (training/classify/fusion_study.py, docs/training.md).

    model = i3d_effnet_temporal(num_classes=9)  # (B, 3, 16, 224, 224) in [-1, 1] -> (B, 9)
"""

from __future__ import annotations

import torch
from torch import nn

from service.video.preprocess import ClipSpec
from training.classify.models.effnet_temporal import (
    DEFAULT_HEADS,
    EFFNET_CLIP_SPEC,
    EffNetTemporal,
    effnet_temporal,
)
from training.classify.models.i3d_temporal import I3D_CLIP_SPEC, I3DTemporal, i3d_temporal


def odd_frames_renormalised(clips: torch.Tensor, given: ClipSpec, wanted: ClipSpec) -> torch.Tensor:
    """(B, 3, T, H, W) clips normalised by `given`'s mean/std -> (B, 3, T/2, H, W): frames
    1, 3, 5, ..., normalised by `wanted`'s instead."""

    def per_channel(values: tuple[float, ...]) -> torch.Tensor:
        return torch.tensor(values, dtype=clips.dtype).view(1, 3, 1, 1, 1)

    unit = clips[:, :, 1::2] * per_channel(given.std) + per_channel(given.mean)
    return (unit - per_channel(wanted.mean)) / per_channel(wanted.std)


def lite0_frames(clips: torch.Tensor) -> torch.Tensor:
    """What the Lite0 branch sees of an I3D input."""
    return odd_frames_renormalised(clips, I3D_CLIP_SPEC, EFFNET_CLIP_SPEC)


class I3DEffNetTemporal(nn.Module):
    """I3D with its heads beside Lite0 with its heads; log-probabilities averaged."""

    def __init__(self, video: I3DTemporal, frames: EffNetTemporal) -> None:
        super().__init__()
        self.video = video
        self.frames = frames

    def logits_and_ood_embedding(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        video_log_probs, embedding = self.video.logits_and_ood_embedding(x)
        frame_log_probs = self.frames(lite0_frames(x))
        return (video_log_probs + frame_log_probs) / 2, embedding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits_and_ood_embedding(x)[0]


def i3d_effnet_temporal(num_classes: int, heads: int = DEFAULT_HEADS) -> I3DEffNetTemporal:
    return I3DEffNetTemporal(
        i3d_temporal(num_classes, heads=heads), effnet_temporal(num_classes, heads=heads)
    )
