"""The open-set distance: Ledoit-Wolf as scikit-learn computes it; Mahalanobis per dimension."""

import torch

from training.classify.open_set import class_distance, ledoit_wolf

# Twelve centred rows, and scikit-learn 1.x's LedoitWolf(assume_centered=True) on them:
# shrinkage 0.45159493723610883, covariance[0, 0] 2.0782842718870134, [0, 1] -0.0485450903583910.
ROWS = [
    [0.047, -0.105, 0.745, -0.104, 2.348], [0.519, 3.1, 2.879, 1.256, -0.867],
    [0.468, -0.318, -3.34, 2.969, -3.424], [0.371, -1.61, -2.561, -1.055, -0.171],
    [-0.352, 0.598, 0.658, 0.22, -4.761], [1.023, -2.211, -2.497, -0.363, -1.253],
    [0.087, -0.209, -2.01, 0.107, 0.602], [-0.473, -3.46, -0.449, -2.253, 0.938],
    [-0.48, 3.649, 1.548, 0.35, -0.117], [-1.995, 1.535, 4.293, -1.631, 2.137],
    [-0.68, -2.409, -0.12, 0.346, 5.687], [1.465, 1.44, 0.854, 0.158, -1.12],
]  # fmt: skip


def test_ledoit_wolf_matches_scikit_learn() -> None:
    covariance = ledoit_wolf(torch.tensor(ROWS, dtype=torch.float64))
    assert abs(covariance[0, 0].item() - 2.0782842718870134) < 1e-12
    assert abs(covariance[0, 1].item() - -0.048545090358391045) < 1e-12
    assert torch.allclose(covariance, covariance.T)


def test_distance_is_mahalanobis_to_the_nearest_class_per_dimension() -> None:
    torch.manual_seed(0)
    embedded = (
        torch.randn(40, 6) + torch.tensor([4.0, 0, 0, 0, 0, 0]) * (torch.arange(40) % 2)[:, None]
    )
    targets = (torch.arange(40) % 2).tolist()
    distance = class_distance(embedded, targets)
    means = distance.means

    unit = torch.nn.functional.normalize(embedded, dim=1).double()
    centred = unit - means.double()[torch.tensor(targets)]
    precision = torch.linalg.inv(ledoit_wolf(centred))
    probe = torch.nn.functional.normalize(torch.randn(3, 6), dim=1).double()
    expected = (
        torch.stack(
            [torch.einsum("bd,de,be->b", probe - m, precision, probe - m) for m in means.double()]
        )
        .min(0)
        .values
    )
    assert torch.allclose(distance(probe.float()), (expected / 6).sqrt().float(), rtol=1e-4)


def test_a_class_without_clips_is_never_the_nearest() -> None:
    distance = class_distance(torch.randn(10, 4), [0] * 5 + [2] * 5)
    assert len(distance.means) == 2
