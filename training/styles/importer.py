"""Import a published CycleGAN generator (`latest_net_G.pth`) as a style: ONNX + manifest entry.

The generator is sized from the checkpoint (ngf, number of residual blocks), loaded strictly after
stripping `module.` and stray InstanceNorm running-stat keys, and wrapped so the ONNX speaks the
same [0, 1] RGB NCHW contract as the students.

    python -m training cyclegan import latest_net_G.pth --style vangogh_cyclegan
"""

from __future__ import annotations

from pathlib import Path

from training.styles.export import (
    STYLE_DIR,
    export_style_onnx,
    parity,
    style_entry,
    write_style_entry,
)
from training.styles.metrics import onnx_fps
from training.styles.models.cyclegan import (
    UnitRangeGenerator,
    load_published_generator,
    read_published_checkpoint,
)

PARITY_TOLERANCE = 1e-3


def import_published_generator(
    checkpoint: Path, name: str, out_dir: Path, measure_fps: bool = True
) -> dict:
    """Convert, check parity with torch, and add (or replace) the manifest entry `name`."""
    generator = load_published_generator(read_published_checkpoint(checkpoint))
    model = UnitRangeGenerator(generator).eval()
    path = out_dir / STYLE_DIR / f"{name}.onnx"
    export_style_onnx(model, path)
    diff = parity(model, path, height=64, width=64)
    if diff > PARITY_TOLERANCE:
        raise RuntimeError(f"ONNX and torch differ by {diff:.2e} (> {PARITY_TOLERANCE}) for {path}")
    config = generator.config
    metrics = {
        "fps_320x240": round(onnx_fps(path, repeats=3), 2) if measure_fps else None,
        "onnx_max_abs_diff_vs_torch": float(f"{diff:.2e}"),
    }
    training = {
        "recipe": "imported published CycleGAN ResNet generator (unpaired CycleGAN objective)",
        "source": checkpoint.name,
        "ngf": config.ngf,
        "n_blocks": config.n_blocks,
        "image_size": 256,
    }
    entry = style_entry(out_dir, name, model, metrics, training, kind="feedforward")
    write_style_entry(out_dir, entry)
    return entry
