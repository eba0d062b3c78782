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
from training.classify.open_set import ClassDistance, empty_class_distance


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


# Chosen by `python -m training cascade-study` (docs/training.md): the smallest top-1 probability
# at which every clip Lite0 let exit was right out of fold, plus a 0.05 margin.
EXIT_MIN_TOP1 = 0.75


def cascade_exits(
    frame_log_probs: torch.Tensor, frame_distance: torch.Tensor, min_top1: float, threshold: float
) -> torch.Tensor:
    """(B,) True where Lite0 alone answers: its top-1 probability at least `min_top1` and its
    open-set distance at most `threshold`."""
    return (frame_log_probs.softmax(1).max(1).values >= min_top1) & (frame_distance <= threshold)


class FrameExit(nn.Module):
    """When Lite0 may answer alone: its top-1 probability and its open-set distance (to the
    training clips' classes, on its frozen features) against their limits. An exiting clip reports
    that distance rescaled by `distance_scale` (I3D's threshold / Lite0's), so the one threshold
    the manifest holds for I3D's distance applies to both."""

    def __init__(
        self, distance: ClassDistance, threshold: float, distance_scale: float, min_top1: float
    ) -> None:
        super().__init__()
        self.distance = distance
        self.register_buffer("threshold", torch.tensor(threshold))
        self.register_buffer("distance_scale", torch.tensor(distance_scale))
        self.register_buffer("min_top1", torch.tensor(min_top1))

    def forward(
        self, frame_log_probs: torch.Tensor, frame_embedding: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,) exits, and (B,) the rescaled distance."""
        distance = self.distance(frame_embedding)
        exits = cascade_exits(frame_log_probs, distance, self.min_top1, self.threshold)
        return exits, distance * self.distance_scale


class I3DEffNetTemporal(nn.Module):
    """I3D with its heads beside Lite0 with its heads; log-probabilities averaged. With a
    `frame_exit` (fitted after training), a clip Lite0 is sure of skips I3D (`cascade`)."""

    def __init__(self, video: I3DTemporal, frames: EffNetTemporal) -> None:
        super().__init__()
        self.video = video
        self.frames = frames
        # Until fitted, no clip exits: no top-1 probability reaches 2.
        self.frame_exit = FrameExit(empty_class_distance(), float("inf"), 1.0, 2.0)

    def logits_and_ood_embedding(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both branches on every clip: the fused log-probabilities and I3D's embedding."""
        video_log_probs, embedding = self.video.logits_and_ood_embedding(x)
        frame_log_probs = self.frames(lite0_frames(x))
        return (video_log_probs + frame_log_probs) / 2, embedding

    def cascade(
        self, x: torch.Tensor, video_distance: ClassDistance | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Per clip, Lite0's answer where it may exit, else the fused one; with `video_distance`,
        also the open-set distance (Lite0's rescaled where it exits, else I3D's)."""
        frame_log_probs, frame_embedding = self.frames.logits_and_ood_embedding(lite0_frames(x))
        exits, frame_distance = self.frame_exit(frame_log_probs, frame_embedding)
        log_probs, distance = frame_log_probs.clone(), frame_distance.clone()
        rest = (~exits).nonzero()[:, 0]
        if len(rest):
            video_log_probs, embedding = self.video.logits_and_ood_embedding(x[rest])
            log_probs[rest] = (frame_log_probs[rest] + video_log_probs) / 2
            if video_distance is not None:
                distance[rest] = video_distance(embedding)
        return log_probs, distance if video_distance is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cascade(x)[0]


def i3d_effnet_temporal(num_classes: int, heads: int = DEFAULT_HEADS) -> I3DEffNetTemporal:
    return I3DEffNetTemporal(
        i3d_temporal(num_classes, heads=heads), effnet_temporal(num_classes, heads=heads)
    )
