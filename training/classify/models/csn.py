"""Channel-separated video network (ir-CSN): bottlenecks whose 3x3x3 convolution is depthwise.

Every channel interaction happens in the 1x1x1 convolutions; the depthwise 3x3x3 only mixes
space and time within a channel, so the model is tiny. What keeps it from collapsing (the study's
18 %): a BatchNorm after *every* convolution including the depthwise one, He init computed for
the depthwise fan (9-27 inputs, not channels x 27), the last BN of each residual branch zeroed so
blocks start as identities, and a warm-up before the peak learning rate (see `training/loops`).

    model = csn_small(num_classes=3)  # input (B, 3, T, H, W)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class CsnConfig:
    stem_width: int = 24
    widths: tuple[int, ...] = (64, 128, 256, 512)  # block outputs; bottleneck = width // 4
    blocks: tuple[int, ...] = (1, 1, 2, 1)
    dropout: float = 0.3
    norm_after_depthwise: bool = True  # False reproduces the collapse-prone variant


def _bn(channels: int) -> nn.BatchNorm3d:
    return nn.BatchNorm3d(channels)


class ChannelSeparatedBottleneck(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int, norm_after_depthwise: bool) -> None:
        super().__init__()
        mid = out_ch // 4
        self.reduce = nn.Sequential(
            nn.Conv3d(in_ch, mid, 1, bias=False), _bn(mid), nn.ReLU(inplace=True)
        )
        depthwise = [nn.Conv3d(mid, mid, 3, stride, 1, groups=mid, bias=not norm_after_depthwise)]
        if norm_after_depthwise:
            depthwise.append(_bn(mid))
        self.depthwise = nn.Sequential(*depthwise, nn.ReLU(inplace=True))
        self.expand = nn.Sequential(nn.Conv3d(mid, out_ch, 1, bias=False), _bn(out_ch))
        self.shortcut = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(
                nn.Conv3d(in_ch, out_ch, 1, stride, bias=False), _bn(out_ch)
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T, H, W)
        out = self.expand(self.depthwise(self.reduce(x)))
        return self.relu(out + self.shortcut(x))


class Csn(nn.Module):
    def __init__(self, config: CsnConfig, num_classes: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv3d(3, config.stem_width, (3, 7, 7), (1, 2, 2), (1, 3, 3), bias=False),
            _bn(config.stem_width),
            nn.ReLU(inplace=True),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
        )
        blocks, in_ch = [], config.stem_width
        for i, (width, count) in enumerate(zip(config.widths, config.blocks, strict=True)):
            for j in range(count):
                stride = 2 if i > 0 and j == 0 else 1
                blocks.append(
                    ChannelSeparatedBottleneck(in_ch, width, stride, config.norm_after_depthwise)
                )
                in_ch = width
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool3d(1), nn.Flatten())
        self.head = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(in_ch, num_classes))
        if config.norm_after_depthwise:
            self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                # fan_in = (in_channels / groups) * kernel volume: right for depthwise layers too
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
        for block in self.blocks:
            nn.init.zeros_(block.expand[1].weight)

    def embed(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, T, H, W) -> (B, C)
        return self.pool(self.blocks(self.stem(x)))

    def classify(self, embedding: torch.Tensor) -> torch.Tensor:  # (B, C) -> (B, classes)
        return self.head(embedding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.embed(x))


def _csn(config: CsnConfig, num_classes: int) -> Csn:
    return Csn(config, num_classes)


def csn_small(num_classes: int) -> Csn:
    """ir-CSN sized for CPU (about 0.5 M parameters)."""
    return _csn(CsnConfig(), num_classes)


def csn_unnormalised(num_classes: int) -> Csn:
    """The collapse-prone variant (no BN after depthwise, default init), kept to show the fix."""
    return _csn(CsnConfig(norm_after_depthwise=False), num_classes)
