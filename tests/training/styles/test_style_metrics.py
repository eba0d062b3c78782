"""KID, PSNR, SSIM and GMAC counting on cases with known answers."""

from __future__ import annotations

import numpy as np
from torch import nn

from training.styles.metrics import count_gmac, kernel_inception_distance, psnr, ssim


def test_kid_is_unbiased_near_zero_for_one_distribution_and_grows_with_shift():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(200, 16)), rng.normal(size=(200, 16))
    same = kernel_inception_distance(a, b)
    shifted = kernel_inception_distance(a, b + 1.0)
    assert abs(same) < 0.05 and shifted > 10 * abs(same)


def test_psnr_and_ssim():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    assert ssim(image, image) == 1.0 and psnr(image, image) == float("inf")
    noisy = np.clip(image.astype(int) + rng.integers(-8, 9, size=image.shape), 0, 255).astype(
        np.uint8
    )
    assert 28 < psnr(image, noisy) < 40 and 0.5 < ssim(image, noisy) < 1.0


def test_gmac_counts_convolutions():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ConvTranspose2d(8, 4, 2, stride=2))
    # conv: 16*16 px * 3*9 * 8; transposed: 16*16 input px * 8 * 4 * 4
    assert abs(count_gmac(model, 16, 16) - (16 * 16 * 27 * 8 + 16 * 16 * 8 * 4 * 4) / 1e9) < 1e-12
