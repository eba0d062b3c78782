"""Model families by name, so `train --model NAME` needs no if-chains.

    model = build_model("r2plus1d", num_classes=3)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from service.video.preprocess import ClipSpec
from training.models.r2plus1d import r2plus1d_small


@dataclass(frozen=True)
class Family:
    builder: Callable[[int], nn.Module]
    display_name: str
    clip_spec: ClipSpec


FAMILIES: dict[str, Family] = {
    "r2plus1d": Family(r2plus1d_small, "R(2+1)D ResNet (factorised 3D convolutions)", ClipSpec()),
}


def get_family(name: str) -> Family:
    if name not in FAMILIES:
        raise KeyError(f"unknown model family {name!r}; known: {', '.join(sorted(FAMILIES))}")
    return FAMILIES[name]


def build_model(name: str, num_classes: int) -> nn.Module:
    return get_family(name).builder(num_classes)
