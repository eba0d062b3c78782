"""A student's palette moved onto its painter's: one affine RGB map appended to its output.

KID on ImageNet features is sensitive to colour, and a painter's set has a palette (ukiyo-e's
paper and muted inks). The map is the linear Monge-Kantorovich transport between two Gaussians
(Pitie and Kokaram 2007, as in colour transfer): it takes the mean and covariance of the
student's output pixels on training frames to those of the painter's paintings. Twelve numbers,
fitted in closed form, nothing tuned; it runs as one 1x1 convolution after the student's sigmoid.

    python -m training styles colour-match --style ukiyoe --run-dir runs/colour/ukiyoe
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from training.checkpoints import save_checkpoint
from training.styles.data import load_content, load_images
from training.styles.distillation import load_student, stylise_batch
from training.styles.models.student import Student, config_dict, student_from_config

PIXELS_PER_IMAGE = 2048


def _sqrtm(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix."""
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def gaussian_transport(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(A, b) with A x + b taking (N, 3) `source` pixels' mean and covariance to `target`'s.

    A = S^-1/2 (S^1/2 T S^1/2)^1/2 S^-1/2: symmetric, so the map moves each colour as little
    as a linear map can while matching the second moments.
    """
    mu_s, mu_t = source.mean(0), target.mean(0)
    cov_s = np.cov(source, rowvar=False) + 1e-6 * np.eye(3)
    cov_t = np.cov(target, rowvar=False) + 1e-6 * np.eye(3)
    root_s = _sqrtm(cov_s)
    inverse_root_s = np.linalg.inv(root_s)
    transport = inverse_root_s @ _sqrtm(root_s @ cov_t @ root_s) @ inverse_root_s
    return transport, mu_t - transport @ mu_s


def sampled_pixels(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(N * PIXELS_PER_IMAGE, 3) RGB in [0, 1], the same number from every image."""
    flat = images.reshape(len(images), -1, 3)
    picks = rng.integers(0, flat.shape[1], size=(len(images), PIXELS_PER_IMAGE))
    return (np.take_along_axis(flat, picks[..., None], axis=1).reshape(-1, 3) / 255.0).astype(
        np.float64
    )


def with_colour_map(student: Student, transport: np.ndarray, shift: np.ndarray) -> Student:
    """A copy of `student` whose output goes through clip(A y + b, 0, 1)."""
    matched = student_from_config({**config_dict(student.config), "colour_map": True})
    state = {k: v for k, v in student.state_dict().items() if not k.startswith("colour.")}
    matched.load_state_dict(state, strict=False)
    with torch.no_grad():
        matched.colour.weight.copy_(torch.from_numpy(transport).float()[:, :, None, None])
        matched.colour.bias.copy_(torch.from_numpy(shift).float())
    return matched.eval()


def colour_match(
    style: str,
    student_path: Path,
    data_root: Path,
    cache_dir: Path,
    run_dir: Path,
    held_back: int = 360,
    limit: int = 0,
) -> dict:
    """Fit the map on the student's outputs for the training-group frames that `styles compare
    --frames held_back` does not judge on, and on the painter's set; save it as a run folder."""
    student, _ = load_student(Path(student_path))
    if isinstance(student, Student) and student.colour is not None:
        raise ValueError(f"{student_path} already has a colour map")
    frames = load_content(data_root, cache_dir, limit=limit).train_frames
    judged = np.linspace(0, len(frames) - 1, min(held_back, len(frames))).round().astype(int)
    fit_frames = np.delete(frames, judged, axis=0) if len(frames) > held_back else frames
    rng = np.random.default_rng(0)
    source = sampled_pixels(stylise_batch(student, fit_frames), rng)
    target = sampled_pixels(load_images(data_root / "styles" / style, limit=limit), rng)
    transport, shift = gaussian_transport(source, target)
    matched = with_colour_map(student, transport, shift)
    record = {
        "colour_matched_from": str(student_path),
        "fit_frames": len(fit_frames),
        "transport": np.round(transport, 4).tolist(),
        "shift": np.round(shift, 4).tolist(),
    }
    state = {
        "model": matched.state_dict(),
        "config": config_dict(matched.config),
        "iteration": 0,
        "train_time_s": 0.0,
        "colour_map": record,
    }
    save_checkpoint(Path(run_dir) / "last.pt", state)
    return {"style": style, "run_dir": str(run_dir), **record}
