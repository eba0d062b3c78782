"""Perceptual and Gram style losses on ImageNet EfficientNet-Lite0 feature maps.

losses = LiteLosses(efficientnet_lite0(weights=default_weights_path()))
targets = losses.gram_targets(paintings)          # mean Gram matrices of a painter's set
loss = losses.perceptual(student_out, teacher_out) + losses.style(student_out, targets)
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from training.efficientnet_lite import LITE_MEAN, LITE_STD, EfficientNetLite
from training.styles.models.cyclegan import PatchDiscriminator

# Indices into EfficientNetLite.feature_maps(): stem (32 ch, 1/2), 16 ch 1/2, 24 ch 1/4,
# 40 ch 1/8, 80 ch 1/16. Deeper stages add little texture and cost backward time.
PERCEPTUAL_MAPS = (2, 3, 4)
STYLE_MAPS = (1, 2, 3, 4)
_DEPTH = max(PERCEPTUAL_MAPS + STYLE_MAPS) + 1


def gram(features: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C, C)
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


class LiteLosses(nn.Module):
    def __init__(self, encoder: EfficientNetLite) -> None:
        super().__init__()
        self.encoder = encoder.eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor(LITE_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(LITE_STD).view(1, 3, 1, 1))

    def maps(self, images: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, H, W) in [0, 1] -> the first feature maps (stops after the last one used)."""
        x = (images - self.mean) / self.std
        enc = self.encoder
        x = enc.act(enc._bn0(enc._conv_stem(x)))
        out = [x]
        for i, block in enumerate(enc._blocks):
            x = block(x)
            last = i + 1 == len(enc._blocks) or enc._blocks[i + 1]._depthwise_conv.stride[0] == 2
            if last:
                out.append(x)
                if len(out) == _DEPTH:
                    break
        return out

    def perceptual(
        self, out_maps: list[torch.Tensor], target_maps: list[torch.Tensor]
    ) -> torch.Tensor:
        return sum(F.mse_loss(out_maps[i], target_maps[i]) for i in PERCEPTUAL_MAPS) / len(
            PERCEPTUAL_MAPS
        )

    def style(self, out_maps: list[torch.Tensor], grams: list[torch.Tensor]) -> torch.Tensor:
        total = 0.0
        for i, target in zip(STYLE_MAPS, grams, strict=True):
            total = total + F.mse_loss(
                gram(out_maps[i]), target.expand(out_maps[i].shape[0], -1, -1)
            )
        return total / len(STYLE_MAPS)

    @torch.no_grad()
    def gram_targets(self, paintings: np.ndarray, batch: int = 16) -> list[torch.Tensor]:
        """Mean Gram matrix per style layer over (N, H, W, 3) uint8 paintings (the texture)."""
        sums: list[torch.Tensor] = [torch.zeros(1, device=self.mean.device) for _ in STYLE_MAPS]
        for start in range(0, len(paintings), batch):
            x = torch.from_numpy(paintings[start : start + batch]).to(self.mean.device)
            x = x.permute(0, 3, 1, 2).float() / 255.0
            maps = self.maps(x)
            for k, i in enumerate(STYLE_MAPS):
                sums[k] = sums[k] + gram(maps[i]).sum(0, keepdim=True)
        return [s / len(paintings) for s in sums]


class PaintingCritic:
    """A PatchGAN that tells the painter's canvases from the student's output (least squares).

    The student gets `generator_loss(out)`; `step(out)` then trains the critic on random crops of
    the paintings against the (detached) output, as in CycleGAN's discriminator update.
    """

    def __init__(
        self, paintings: np.ndarray, crop: int, device: torch.device, seed: int = 0, lr=2e-4
    ) -> None:
        self.paintings, self.crop = paintings, min(crop, *paintings.shape[1:3])
        self.net = PatchDiscriminator(ndf=32).to(device)
        self.optimiser = torch.optim.Adam(self.net.parameters(), lr=lr, betas=(0.5, 0.999))
        self.rng, self.device = np.random.default_rng(seed), device

    def _real(self, count: int) -> torch.Tensor:
        crops = []
        h, w = self.paintings.shape[1:3]
        for _ in range(count):
            i = self.rng.integers(len(self.paintings))
            top, left = self.rng.integers(h - self.crop + 1), self.rng.integers(w - self.crop + 1)
            crop = self.paintings[i, top : top + self.crop, left : left + self.crop]
            crops.append(crop[:, ::-1] if self.rng.random() < 0.5 else crop)
        x = torch.from_numpy(np.ascontiguousarray(np.stack(crops))).to(self.device)
        return x.permute(0, 3, 1, 2).float() / 255.0

    def _score(self, images: torch.Tensor) -> torch.Tensor:  # [0, 1] in, as CycleGAN's [-1, 1]
        return self.net(images * 2.0 - 1.0)

    def generator_loss(self, out: torch.Tensor) -> torch.Tensor:
        self.net.requires_grad_(False)
        score = self._score(out)
        self.net.requires_grad_(True)
        return F.mse_loss(score, torch.ones_like(score))

    def step(self, out: torch.Tensor) -> float:
        real, fake = self._score(self._real(len(out))), self._score(out.detach())
        loss = 0.5 * (
            F.mse_loss(real, torch.ones_like(real)) + F.mse_loss(fake, torch.zeros_like(fake))
        )
        self.optimiser.zero_grad(set_to_none=True)
        loss.backward()
        self.optimiser.step()
        return float(loss.detach())

    def state_dict(self) -> dict:
        return {"net": self.net.state_dict(), "optimiser": self.optimiser.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.optimiser.load_state_dict(state["optimiser"])
