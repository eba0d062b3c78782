"""CycleGAN networks: the published ResNet generator and the 70x70 PatchGAN discriminator.

The generator keeps the reference implementation's layout as one `nn.Sequential` called `model`,
so its state_dict keys (`model.1.weight` ... `model.26.bias`, residual blocks `model.10` ..
`model.18` with `conv_block.1` / `conv_block.5`) match a published `latest_net_G.pth` and it loads
with `strict=True` (after `clean_published_state_dict`).

    generator = cyclegan_generator_published()
    generator.load_state_dict(clean_published_state_dict(torch.load("latest_net_G.pth")))
    y = generator(x)  # (B, 3, H, W) in [-1, 1] -> (B, 3, H, W) in [-1, 1], H and W multiples of 4
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn


@dataclass(frozen=True)
class GeneratorConfig:
    ngf: int = 64  # channels of the first conv; the published generators use 64
    n_blocks: int = 9  # residual blocks at 1/4 resolution; published: 9


def _norm(channels: int) -> nn.InstanceNorm2d:
    # The reference uses InstanceNorm without affine parameters or running statistics.
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class ResnetBlock(nn.Module):
    """Two reflection-padded 3x3 convs plus skip; weights in `conv_block.1` and `conv_block.5`."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=True),
            _norm(channels),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=True),
            _norm(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W)
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """c7s1-ngf, d2ngf, d4ngf, n_blocks x R4ngf, u2ngf, ungf, c7s1-3, tanh (Johnson et al.)."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.config = config
        ngf = config.ngf
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(3, ngf, 7, bias=True),
            _norm(ngf),
            nn.ReLU(True),
        ]
        for mult in (1, 2):  # two stride-2 downsamplings: (B, ngf, H, W) -> (B, 4ngf, H/4, W/4)
            layers += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=True),
                _norm(ngf * mult * 2),
                nn.ReLU(True),
            ]
        layers += [ResnetBlock(ngf * 4) for _ in range(config.n_blocks)]
        for mult in (4, 2):  # back up: (B, 4ngf, H/4, W/4) -> (B, ngf, H, W)
            layers += [
                nn.ConvTranspose2d(
                    ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1, bias=True
                ),
                _norm(ngf * mult // 2),
                nn.ReLU(True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7, bias=True), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) in [-1, 1]
        return self.model(x)


class UnitRangeGenerator(nn.Module):
    """A generator behind the service's contract: RGB in [0, 1] in, RGB in [0, 1] out."""

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) in [0, 1]
        # Same as the reference's (x/255 - 0.5)/0.5 in and (y*0.5 + 0.5)*255 out, on a [0, 1] scale.
        return self.generator(x * 2.0 - 1.0) * 0.5 + 0.5


def _cyclegan_generator(config: GeneratorConfig) -> ResnetGenerator:
    return ResnetGenerator(config)


def cyclegan_generator_published() -> ResnetGenerator:
    """The published size: ngf 64, 9 blocks, 11.4 M parameters, about 57 GMAC at 256x256."""
    return _cyclegan_generator(GeneratorConfig(ngf=64, n_blocks=9))


def cyclegan_generator_compact(ngf: int = 32, n_blocks: int = 6) -> ResnetGenerator:
    """A CPU-trainable generator with the same layout (ngf 32, 6 blocks by default)."""
    return _cyclegan_generator(GeneratorConfig(ngf=ngf, n_blocks=n_blocks))


def cyclegan_generator(config: GeneratorConfig) -> ResnetGenerator:
    """Any size, e.g. rebuilt from a checkpoint's saved config."""
    return _cyclegan_generator(config)


class PatchDiscriminator(nn.Module):
    """The 70x70 PatchGAN: each output logit judges a 70x70 patch of the input."""

    def __init__(self, ndf: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1, bias=True),
                _norm(ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
        layers += [nn.Conv2d(ndf * mult, 1, 4, 1, 1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) -> (B, 1, H/8 - 2, W/8 - 2)
        return self.model(x)


_RUNNING_STAT = re.compile(r"\.(running_mean|running_var|num_batches_tracked)$")


def clean_published_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip a DataParallel `module.` prefix and the InstanceNorm running-stat keys old files carry.

    The reference's InstanceNorm keeps no running statistics, but checkpoints saved by older
    PyTorch versions hold `running_mean` / `running_var` entries for it; they carry no information.
    """
    cleaned = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if _RUNNING_STAT.search(key):
            continue
        cleaned[key] = value
    return cleaned


def read_published_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """A generator state dict from a `.pth`: plain, or wrapped under 'state_dict' / 'model'."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(state.get(key), dict):
            state = state[key]
    return state


def config_from_state_dict(state: dict[str, torch.Tensor]) -> GeneratorConfig:
    """Read ngf and the number of residual blocks off a (cleaned) generator state dict."""
    if "model.1.weight" not in state:
        raise ValueError("not a CycleGAN ResNet generator state dict: no 'model.1.weight' key")
    ngf = int(state["model.1.weight"].shape[0])
    blocks = {int(m.group(1)) for k in state if (m := re.match(r"model\.(\d+)\.conv_block\.", k))}
    return GeneratorConfig(ngf=ngf, n_blocks=len(blocks))


def load_published_generator(state: dict[str, torch.Tensor]) -> ResnetGenerator:
    """A generator sized from the checkpoint, loaded strictly."""
    cleaned = clean_published_state_dict(state)
    generator = cyclegan_generator(config_from_state_dict(cleaned))
    generator.load_state_dict(cleaned, strict=True)
    return generator.eval()


def config_dict(config: GeneratorConfig) -> dict:
    return asdict(config)
