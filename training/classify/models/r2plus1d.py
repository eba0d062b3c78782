"""R(2+1)D: a video ResNet whose 3D convolutions are factorised into 2D spatial + 1D temporal.

Shaped after torchvision's video ResNet (`r2plus1d_18` -> `_video_resnet`), narrowed for CPU.

    model = r2plus1d_small(num_classes=3)  # input (B, 3, T, H, W)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class R2Plus1DConfig:
    widths: tuple[int, int, int, int] = (24, 48, 96, 128)
    blocks: tuple[int, int, int, int] = (1, 1, 1, 1)
    stem_width: int = 24
    dropout: float = 0.3


def _midplanes(in_planes: int, out_planes: int) -> int:
    # Keeps the (2+1)D pair's parameter count close to the full 3x3x3 convolution it replaces.
    return (in_planes * out_planes * 27) // (in_planes * 9 + 3 * out_planes)


class Conv2Plus1D(nn.Sequential):
    def __init__(self, in_planes: int, out_planes: int, stride: int = 1) -> None:
        mid = _midplanes(in_planes, out_planes)
        super().__init__(
            nn.Conv3d(in_planes, mid, (1, 3, 3), (1, stride, stride), (0, 1, 1), bias=False),
            nn.BatchNorm3d(mid),
            nn.ReLU(inplace=True),
            nn.Conv3d(mid, out_planes, (3, 1, 1), (stride, 1, 1), (1, 0, 0), bias=False),
        )


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(Conv2Plus1D(in_planes, planes, stride), nn.BatchNorm3d(planes))
        self.conv2 = nn.Sequential(Conv2Plus1D(planes, planes), nn.BatchNorm3d(planes))
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                nn.Conv3d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm3d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T, H, W)
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.conv1(x))
        return self.relu(self.conv2(out) + identity)


class R2Plus1DStem(nn.Sequential):
    def __init__(self, width: int) -> None:
        mid = 45 * width // 64
        super().__init__(
            nn.Conv3d(3, mid, (1, 7, 7), (1, 2, 2), (0, 3, 3), bias=False),
            nn.BatchNorm3d(mid),
            nn.ReLU(inplace=True),
            nn.Conv3d(mid, width, (3, 1, 1), 1, (1, 0, 0), bias=False),
            nn.BatchNorm3d(width),
            nn.ReLU(inplace=True),
        )


class VideoResNet(nn.Module):
    def __init__(self, config: R2Plus1DConfig, num_classes: int) -> None:
        super().__init__()
        self.stem = R2Plus1DStem(config.stem_width)
        layers, in_planes = [], config.stem_width
        for i, (width, count) in enumerate(zip(config.widths, config.blocks, strict=True)):
            for j in range(count):
                layers.append(BasicBlock(in_planes, width, stride=2 if i > 0 and j == 0 else 1))
                in_planes = width
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.head = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(in_planes, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        # Zero the last BN of each residual branch so every block starts as an identity.
        for block in self.layers:
            nn.init.zeros_(block.conv2[1].weight)

    def embed(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, T, H, W) -> (B, C)
        x = self.layers(self.stem(x))  # (B, C, T/8, H/16, W/16)
        return self.pool(x).flatten(1)

    def classify(self, embedding: torch.Tensor) -> torch.Tensor:  # (B, C) -> (B, classes)
        return self.head(embedding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.embed(x))


def _video_resnet(config: R2Plus1DConfig, num_classes: int) -> VideoResNet:
    return VideoResNet(config, num_classes)


def r2plus1d_small(num_classes: int) -> VideoResNet:
    """The CPU-sized R(2+1)D (1.30 M parameters with 9 classes)."""
    return _video_resnet(R2Plus1DConfig(), num_classes)


def r2plus1d_study_size(num_classes: int) -> VideoResNet:
    """Narrower, at the study's size (0.45 M parameters with 9 classes against its 0.44 M)."""
    return _video_resnet(R2Plus1DConfig(widths=(16, 32, 56, 72), stem_width=16), num_classes)
