"""2D CNN per frame + LSTM over time, with a VGG-style or a ResNet-style backbone.

The study's best family (VGG-style, 90 %) and its light ResNet-style sibling (77 %).

    model = vgg_lstm(num_classes=3)     # input (B, 3, T, H, W)
    model = resnet_lstm(num_classes=3)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class CnnLstmConfig:
    backbone: str = "vgg"  # "vgg" or "resnet"
    widths: tuple[int, ...] = (32, 64, 128, 256, 512)
    lstm_hidden: int = 256
    dropout: float = 0.4


def _conv_bn_relu(in_ch: int, out_ch: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


def vgg_backbone(widths: tuple[int, ...]) -> nn.Sequential:
    """Blocks of two 3x3 convolutions then 2x2 max-pool; global average pool at the end."""
    layers, in_ch = [], 3
    for width in widths:
        layers += [_conv_bn_relu(in_ch, width), _conv_bn_relu(width, width), nn.MaxPool2d(2)]
        in_ch = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())


class ResidualBlock2d(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv_bn_relu(in_ch, out_ch, stride),
            nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False),
            nn.BatchNorm2d(out_ch),
        )
        nn.init.zeros_(self.body[2].weight)  # each block starts as an identity
        self.shortcut = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch)
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, H, W)
        return self.relu(self.body(x) + self.shortcut(x))


def resnet_backbone(widths: tuple[int, ...]) -> nn.Sequential:
    """A 7x7 stem then one residual block per width, each halving the resolution."""
    layers = [_conv_bn_relu(3, widths[0], 2), nn.MaxPool2d(2)]
    in_ch = widths[0]
    for i, width in enumerate(widths):
        layers.append(ResidualBlock2d(in_ch, width, 1 if i == 0 else 2))
        in_ch = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())


class CnnLstm(nn.Module):
    def __init__(self, config: CnnLstmConfig, num_classes: int) -> None:
        super().__init__()
        build = {"vgg": vgg_backbone, "resnet": resnet_backbone}[config.backbone]
        self.backbone = build(config.widths)
        self.lstm = nn.LSTM(config.widths[-1], config.lstm_hidden, batch_first=True)
        self.head = nn.Sequential(
            nn.Dropout(config.dropout), nn.Linear(config.lstm_hidden, num_classes)
        )

    def embed(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, T, H, W) -> (B, hidden)
        batch, channels, frames, height, width = x.shape
        per_frame = x.transpose(1, 2).reshape(batch * frames, channels, height, width)
        features = self.backbone(per_frame).reshape(batch, frames, -1)  # (B, T, C)
        sequence, _ = self.lstm(features)  # (B, T, hidden)
        return sequence.mean(1)

    def classify(self, embedding: torch.Tensor) -> torch.Tensor:  # (B, hidden) -> (B, classes)
        return self.head(embedding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.embed(x))


def _cnn_lstm(config: CnnLstmConfig, num_classes: int) -> CnnLstm:
    return CnnLstm(config, num_classes)


def vgg_lstm(num_classes: int) -> CnnLstm:
    """VGG-style backbone (5 blocks: 32-512 channels) + LSTM: the study's 5.5 M-parameter model."""
    return _cnn_lstm(CnnLstmConfig(backbone="vgg"), num_classes)


def resnet_lstm(num_classes: int) -> CnnLstm:
    """ResNet-style backbone (32-256 channels) + LSTM: under 1 M parameters."""
    return _cnn_lstm(
        CnnLstmConfig(backbone="resnet", widths=(24, 48, 96, 192), lstm_hidden=128), num_classes
    )
