"""The colour map takes the student's output palette onto the painter's, exactly to second order."""

import numpy as np
import torch

from training.styles.colour_match import gaussian_transport, with_colour_map
from training.styles.models.student import student_tiny


def test_transport_matches_the_targets_mean_and_covariance() -> None:
    rng = np.random.default_rng(0)
    source = rng.normal(size=(20000, 3)) @ np.array([[0.2, 0.05, 0], [0, 0.1, 0], [0.02, 0, 0.3]])
    target = rng.normal(size=(20000, 3)) @ np.array([[0.1, 0, 0.04], [0.03, 0.25, 0], [0, 0, 0.1]])
    target += [0.6, 0.5, 0.3]
    transport, shift = gaussian_transport(source, target)
    moved = source @ transport.T + shift
    assert np.allclose(moved.mean(0), target.mean(0), atol=1e-9)
    assert np.allclose(np.cov(moved, rowvar=False), np.cov(target, rowvar=False), atol=1e-5)
    assert np.allclose(transport, transport.T)  # the least-motion linear map is symmetric


def test_colour_map_is_applied_after_the_student_and_kept_in_range() -> None:
    student = student_tiny().eval()
    swap = np.array([[0, 0, 1], [0, 1, 0], [1, 0, 0]], float)  # blue and red exchanged
    matched = with_colour_map(student, swap, np.zeros(3))
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(matched(x), student(x).flip(1), atol=1e-6)
        bright = with_colour_map(student, np.eye(3), np.full(3, 2.0))(x)
    assert bright.max() <= 1.0
