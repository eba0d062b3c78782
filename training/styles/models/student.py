"""Compact feed-forward stylizers ("students") that the service runs on CPU for video.

Layout: a 5x5 stem at full resolution, two stride-2 convs to 1/4 resolution, inverted-residual
blocks (1x1 expand, depthwise 3x3, 1x1 project) there, and nearest-upsample + 3x3 convs back up.
Most of the compute of a ResNet-9 CycleGAN generator sits in its 256-channel 3x3 convs at 1/4
resolution; depthwise-separable blocks cut that by an order of magnitude.

    student = student_small()
    y = student(x)  # (B, 3, H, W) RGB in [0, 1] -> (B, 3, H, W) RGB in [0, 1]; H, W multiples of 4
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class StudentConfig:
    channels: tuple[int, int, int] = (16, 32, 64)  # full, 1/2 and 1/4 resolution
    blocks: int = 5  # inverted-residual blocks at 1/4 resolution
    expansion: int = 2  # width multiplier inside each block


def _norm(channels: int) -> nn.InstanceNorm2d:
    # Instance norm makes stylizers train fast and keeps per-frame contrast stable.
    return nn.InstanceNorm2d(channels, affine=True)


class ConvNormAct(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__(
            nn.Conv2d(
                cin, cout, kernel, stride, kernel // 2, groups=groups, padding_mode="reflect"
            ),
            _norm(cout),
            nn.ReLU(inplace=True),
        )


class InvertedResidual(nn.Module):
    """1x1 expand, depthwise 3x3, 1x1 project, plus skip: (B, C, h, w) -> (B, C, h, w)."""

    def __init__(self, channels: int, expansion: int) -> None:
        super().__init__()
        mid = channels * expansion
        self.body = nn.Sequential(
            ConvNormAct(channels, mid, 1),
            ConvNormAct(mid, mid, 3, groups=mid),
            nn.Conv2d(mid, channels, 1),
            _norm(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class UpBlock(nn.Module):
    """Nearest 2x upsample then 3x3 conv (no checkerboard artefacts of transposed convs)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = ConvNormAct(cin, cout, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, cin, h, w) -> (B, cout, 2h, 2w)
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Student(nn.Module):
    def __init__(self, config: StudentConfig) -> None:
        super().__init__()
        self.config = config
        c0, c1, c2 = config.channels
        self.encoder = nn.Sequential(
            ConvNormAct(3, c0, 5),  # (B, c0, H, W)
            ConvNormAct(c0, c1, 3, stride=2),  # (B, c1, H/2, W/2)
            ConvNormAct(c1, c2, 3, stride=2),  # (B, c2, H/4, W/4)
        )
        self.blocks = nn.Sequential(
            *[InvertedResidual(c2, config.expansion) for _ in range(config.blocks)]
        )
        self.decoder = nn.Sequential(UpBlock(c2, c1), UpBlock(c1, c0))  # (B, c0, H, W)
        self.head = nn.Conv2d(c0, 3, 5, padding=2, padding_mode="reflect")

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) in [0, 1]
        y = self.decoder(self.blocks(self.encoder(x * 2.0 - 1.0)))
        return torch.sigmoid(self.head(y))  # (B, 3, H, W) in [0, 1]


def _student(config: StudentConfig) -> Student:
    return Student(config)


def student_small() -> Student:
    """The shipped size: channels 16/32/64, 5 blocks (about 1 GMAC at 256x256)."""
    return _student(StudentConfig())


def student_tiny() -> Student:
    """For tests and smoke runs: channels 8/16/16, 1 block."""
    return _student(StudentConfig(channels=(8, 16, 16), blocks=1, expansion=2))


def student_from_config(config: dict | StudentConfig) -> Student:
    """Rebuild from a checkpoint's saved config."""
    if isinstance(config, dict):
        config = StudentConfig(
            channels=tuple(config["channels"]),
            blocks=config["blocks"],
            expansion=config["expansion"],
        )
    return _student(config)


def config_dict(config: StudentConfig) -> dict:
    return asdict(config)
