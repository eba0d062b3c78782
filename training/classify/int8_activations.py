"""The default's I3D branch computed in int8 (activations as well as weights) in its ONNX file.

onnxruntime runs I3D's 3D convolutions 3-4x faster as int8 (QLinearConv: uint8 activations, int8
weights per output channel, scales calibrated on clips of the training groups) than in float32,
except the first: with 3 input channels its int8 kernel is 3x slower, so it stays float32
(docs/benchmarks.md). The torch model stays float32: the rewritten file is compared with the
float one on real clips (benchmarks/classify_runtimes.py --against).

The cascade's I3D part (training/classify/cascade_onnx.py) sits inside an ONNX `If`; onnxruntime's
quantiser takes whole models, so the part is taken out as one, quantised, and put back.

    quantise_cascade_video(path, calibration_clips)   # a cascade file, rewritten in place
    python -m training int8-candidate --data ../shared/data   # a models folder to measure
"""

from __future__ import annotations

import random
import shutil
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

from service.contract.manifest import load_manifest_content, sha256_of
from service.video.preprocess import ClipSpec
from training.classify.codec_check import serving_input
from training.classify.int8_weights import store_conv_weights_as_int8
from training.classify.ucf101 import ClipRecord, discover_clips

VIDEO_INPUT = "video/clip"  # the clips that go on to I3D, gathered in the `If`
VIDEO_OUTPUTS = ["video/video_log_probs", "video/video_distance"]
CALIBRATION_CLIPS_PER_CLASS = 3
# The first node of the cascade's own tail after the I3D part (fusing the two branches).
_TAIL_START = "frames_of_rest"


class _Clips(CalibrationDataReader):
    def __init__(self, clips: list[np.ndarray]) -> None:
        self._clips = iter(clips)

    def get_next(self) -> dict[str, np.ndarray] | None:
        clip = next(self._clips, None)
        return None if clip is None else {VIDEO_INPUT: clip}


def _then_branch(model: onnx.ModelProto) -> onnx.GraphProto:
    cascade = next(node for node in model.graph.node if node.op_type == "If")
    return next(attr.g for attr in cascade.attribute if attr.name == "then_branch")


def is_quantised(model: onnx.ModelProto) -> bool:
    return any(node.op_type == "QuantizeLinear" for node in _then_branch(model).node)


def _video_part(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int, int]:
    """The I3D part as a model of its own (input `video/clip`), its weights back in float32
    (int8 storage is exact: the torch model was rounded to it); and where it lies in the
    then-branch's nodes."""
    branch = _then_branch(model)
    first = next(i for i, n in enumerate(branch.node) if list(n.output) == [VIDEO_INPUT]) + 1
    stop = next(i for i, n in enumerate(branch.node) if _TAIL_START in n.output)
    initializers = {init.name: init for init in model.graph.initializer}
    nodes, weights = [], {}
    for node in branch.node[first:stop]:
        if node.op_type == "DequantizeLinear" and node.input[0] in initializers:
            values = numpy_helper.to_array(initializers[node.input[0]]).astype(np.float32)
            scale = numpy_helper.to_array(initializers[node.input[1]])
            restored = values * scale.reshape(-1, *([1] * (values.ndim - 1)))
            weights[node.output[0]] = numpy_helper.from_array(restored, node.output[0])
            continue
        nodes.append(node)
    used = {name for node in nodes for name in node.input}
    kept = [initializers[name] for name in sorted(used & initializers.keys())]

    def tensor(name: str, *dims: str) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, ["batch", *dims])

    log_probs, distance = VIDEO_OUTPUTS
    graph = helper.make_graph(
        nodes,
        "i3d_part",
        [tensor(VIDEO_INPUT, "channels", "frames", "height", "width")],
        [tensor(log_probs, "classes"), tensor(distance)],
        kept + [weights[name] for name in sorted(used & weights.keys())],
    )
    part = helper.make_model(graph, opset_imports=list(model.opset_import))
    part.ir_version = model.ir_version
    return part, first, stop


def _float_stem(part: onnx.ModelProto) -> list[str]:
    """The convolutions on the 3 colour channels, left in float32."""
    initializers = {init.name: init for init in part.graph.initializer}
    return [
        node.name
        for node in part.graph.node
        if node.op_type == "Conv"
        and node.input[1] in initializers
        and initializers[node.input[1]].dims[1] == 3
    ]


def quantise_video_part(part: onnx.ModelProto, clips: list[np.ndarray]) -> onnx.ModelProto:
    """`part` with its convolutions in int8, calibrated on `clips` (each (1, 3, T, H, W)),
    the stem's weights stored as int8 with activations in float32."""
    stem = _float_stem(part)
    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "float.onnx", Path(folder) / "int8.onnx"
        onnx.save(part, str(source))
        quantize_static(
            str(source),
            str(target),
            _Clips(clips),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=["Conv"],
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=stem,
            extra_options={"WeightSymmetric": True},
        )
        store_conv_weights_as_int8(target)
        return onnx.load(str(target))


def quantise_cascade_video(path: Path, clips: list[np.ndarray]) -> bool:
    """Rewrite the cascade file at `path` with its I3D part in int8; False if it already is."""
    model = onnx.load(str(path))
    if is_quantised(model):
        return False
    part, first, stop = _video_part(model)
    quantised = quantise_video_part(part, clips)
    branch = _then_branch(model)
    nodes = [*branch.node[:first], *quantised.graph.node, *branch.node[stop:]]
    del branch.node[:]
    branch.node.extend(nodes)
    branch.initializer.extend(quantised.graph.initializer)
    _drop_unused_initializers(model)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return True


def _drop_unused_initializers(model: onnx.ModelProto) -> None:
    """Top-level initializers no node reads any more, or that a subgraph now defines itself."""
    read: set[str] = set()
    defined: set[str] = set()

    def visit(graph: onnx.GraphProto, top: bool) -> None:
        if not top:
            defined.update(init.name for init in graph.initializer)
        for node in graph.node:
            read.update(node.input)
            defined.update(node.output)
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    visit(attr.g, False)

    visit(model.graph, True)
    kept = [i for i in model.graph.initializer if i.name in read and i.name not in defined]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)


def write_int8_candidate(models_dir: Path, data: Path, out_dir: Path, name: str) -> dict:
    """A copy of `models_dir` in `out_dir` (the other files linked) whose cascade `name` has
    its I3D part in int8, calibrated on clips of its training + validation groups; measure it
    against the shipped file with benchmarks/classify_runtimes.py --against and
    benchmarks/bench.py --models."""
    manifest = load_manifest_content(models_dir)
    entry = next(c for c in manifest.classifiers if c.name == name)
    held_out = set(entry.training["test_groups"])
    seen = [r for r in discover_clips(data, entry.labels) if r.group not in held_out]
    out_dir.mkdir(parents=True, exist_ok=True)
    for path in models_dir.iterdir():
        if path.name not in ("manifest.json", entry.file) and not (out_dir / path.name).exists():
            (out_dir / path.name).symlink_to(path.resolve())
    shutil.copyfile(models_dir / entry.file, out_dir / entry.file)
    quantise_cascade_video(out_dir / entry.file, calibration_clips(seen, entry.input.clip_spec()))
    entry.sha256 = sha256_of(out_dir / entry.file)
    entry.metrics.file_size_bytes = (out_dir / entry.file).stat().st_size
    (out_dir / "manifest.json").write_text(manifest.model_dump_json(indent=2))
    return {"candidate": str(out_dir), "file": entry.file, "sha256": entry.sha256}


def calibration_clips(records: list[ClipRecord], spec: ClipSpec) -> list[np.ndarray]:
    """Served inputs of `CALIBRATION_CLIPS_PER_CLASS` clips a class of `records` (seed 0)."""
    by_label: dict[str, list[ClipRecord]] = {}
    for record in records:
        by_label.setdefault(record.label, []).append(record)
    rng = random.Random(0)
    return [
        serving_input(record, spec)
        for label in sorted(by_label)
        for record in rng.sample(by_label[label], CALIBRATION_CLIPS_PER_CLASS)
    ]
