"""Run an exported model's per-frame image encoder a few frames at a time (an ONNX rewrite).

onnxruntime keeps, for a session's life, the largest working memory a run has needed. The
EfficientNet-Lite0 encoder of `effnet_temporal` (and of the custom classifiers' encoder) sees
the 8 frames of a clip as one batch: ~80 MiB of activations at 224 px. Two frames at a time
need ~30 MiB, at the same speed (one frame at a time is 7-33 % slower; docs/benchmarks.md).

The rewrite copies the encoder's nodes once per chunk of frames (the weights are shared, not
copied). Each copy takes its frames of every clip in the batch, and its first index is computed
from the previous copy's features, so onnxruntime can only run the copies one after another and
frees each chunk's activations before the next starts. The outputs do not change, to the bit.

    model = encode_in_chunks(onnx.load(path), frames=8, chunk=2)
    encode_file_in_chunks(path, frames=8, chunk=2)      # the file rewritten in place

The encoder is found by its shape in the graph torch exports for these models: it starts at the
first convolution's input, a (clips x frames, 3, H, W) batch in clip-major order, and ends at the
first ReduceMean after it, the pooled (clips x frames, D) features. Inside it, a reshape to
(clips, frames, ...) and back (`EffNetTemporal.frame_maps` then `_top`) is skipped, and shape
values taken from that reshape outside the encoder are read from where the reshape got them.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from pathlib import Path

import onnx
from onnx import TensorProto, helper, numpy_helper

# Two frames at a time: a third of the working memory of eight, as fast (one: 7-33 % slower).
FRAMES_PER_PASS = 2


class ChunkingError(ValueError):
    """The graph does not have the shape this rewrite knows how to split."""


class _Graph:
    """Producers and consumers of every value of a graph's nodes."""

    def __init__(self, nodes: list[onnx.NodeProto]) -> None:
        self.nodes = nodes
        self.producer = {out: i for i, node in enumerate(nodes) for out in node.output}
        self.consumers: dict[str, list[int]] = {}
        for i, node in enumerate(nodes):
            for value in node.input:
                self.consumers.setdefault(value, []).append(i)

    def downstream(self, value: str) -> set[int]:
        found: set[int] = set()
        pending = [value]
        while pending:
            for i in self.consumers.get(pending.pop(), []):
                if i not in found:
                    found.add(i)
                    pending.extend(self.nodes[i].output)
        return found

    def upstream(self, value: str) -> set[int]:
        found: set[int] = set()
        pending = [value]
        while pending:
            i = self.producer.get(pending.pop())
            if i is not None and i not in found:
                found.add(i)
                pending.extend(self.nodes[i].input)
        return found


CHUNK_PREFIX = "frame_chunks/"


def is_chunked(model: onnx.ModelProto) -> bool:
    return any(node.name.startswith(CHUNK_PREFIX) for node in model.graph.node)


def encode_file_in_chunks(path: Path, frames: int, chunk: int) -> None:
    """Rewrite the ONNX file at `path` in place (a file already rewritten is left as it is)."""
    model = onnx.load(str(path))
    if not is_chunked(model):
        onnx.save(encode_in_chunks(model, frames, chunk), str(path))


def encode_in_chunks(model: onnx.ModelProto, frames: int, chunk: int) -> onnx.ModelProto:
    """A copy of `model` whose per-frame encoder runs on `chunk` frames of each clip at a time."""
    if chunk < 1 or frames % chunk:
        raise ChunkingError(f"{frames} frames do not split into chunks of {chunk}")
    model = copy.deepcopy(model)
    nodes = list(model.graph.node)
    graph = _Graph(nodes)
    encoder_input, features = _encoder_ends(graph)
    encoder = graph.downstream(encoder_input) & graph.upstream(features)
    body, renamed = _without_round_trips(graph, encoder, features)
    replacements = _escaping_values(graph, encoder, body, features)
    feature_dim = _feature_dim(model, features)

    chunked = _chunk_nodes(
        [nodes[i] for i in sorted(body)],
        encoder_input,
        features,
        renamed,
        frames,
        chunk,
        feature_dim,
    )
    rewritten: list[onnx.NodeProto] = []
    for i, node in enumerate(nodes):
        if i in encoder:
            if i == max(encoder):  # every value the copies read is defined by now
                rewritten.extend(chunked)
            continue
        _rename_inputs(node, replacements)
        rewritten.append(node)
    del model.graph.node[:]
    model.graph.node.extend(rewritten)
    del model.graph.value_info[:]  # shapes inside the encoder changed; onnxruntime infers them
    _drop_unused(model)
    onnx.checker.check_model(model)
    return model


def _encoder_ends(graph: _Graph) -> tuple[str, str]:
    """(the first convolution's input, the first ReduceMean after it)."""
    conv = next((n for n in graph.nodes if n.op_type == "Conv"), None)
    if conv is None:
        raise ChunkingError("the graph has no convolution")
    encoder_input = conv.input[0]
    after = graph.downstream(encoder_input)
    pooling = next(
        (graph.nodes[i] for i in sorted(after) if graph.nodes[i].op_type == "ReduceMean"), None
    )
    if pooling is None:
        raise ChunkingError("no pooling (ReduceMean) follows the first convolution")
    return encoder_input, pooling.output[0]


def _without_round_trips(
    graph: _Graph, encoder: set[int], features: str
) -> tuple[set[int], dict[str, str]]:
    """The encoder's nodes that the features need once each reshape to (clips, frames, ...)
    and straight back is skipped, and the values whose readers take the round trip's input."""
    renamed: dict[str, str] = {}
    for i in sorted(encoder):
        node = graph.nodes[i]
        if node.op_type != "Reshape":
            continue
        for j in graph.consumers.get(node.output[0], []):
            if j in encoder and graph.nodes[j].op_type == "Reshape":
                renamed[graph.nodes[j].output[0]] = node.input[0]
    body: set[int] = set()
    pending = [features]
    while pending:
        value = pending.pop()
        i = graph.producer.get(renamed.get(value, value))
        if i is not None and i in encoder and i not in body:
            body.add(i)
            pending.extend(graph.nodes[i].input)
    return body, renamed


def _escaping_values(
    graph: _Graph, encoder: set[int], body: set[int], features: str
) -> dict[str, str]:
    """Values made inside the encoder and read outside it, mapped to equal values outside.

    Only one kind is allowed: a dimension of a round trip's (clips, frames, ...) reshape, read
    as Gather(Shape(reshape), k); its k-th target dimension came from a value outside."""
    replacements: dict[str, str] = {}
    for i in encoder:
        for value in graph.nodes[i].output:
            outside = [j for j in graph.consumers.get(value, []) if j not in encoder]
            if not outside or value == features:
                continue
            if i in body:  # the chunks compute it only in pieces
                raise ChunkingError(f"{value} is made inside the encoder and read outside it")
            replacements[value] = _dimension_source(graph, i, value)
    return replacements


def _dimension_source(graph: _Graph, index: int, value: str) -> str:
    gather = graph.nodes[index]
    shape = (
        graph.nodes[graph.producer.get(gather.input[0], -1)] if gather.op_type == "Gather" else None
    )
    if shape is None or shape.op_type != "Shape":
        raise ChunkingError(f"{value} is made inside the encoder and read outside it")
    reshape = graph.nodes[graph.producer[shape.input[0]]]
    target = graph.nodes[graph.producer[reshape.input[1]]]
    position = _constant_int(graph, gather.input[1])
    if reshape.op_type != "Reshape" or target.op_type != "Concat" or position is None:
        raise ChunkingError(f"{value} is made inside the encoder and read outside it")
    unsqueeze = graph.nodes[graph.producer[target.input[position]]]
    if unsqueeze.op_type != "Unsqueeze":
        raise ChunkingError(f"{value}: dimension {position} is not a plain value")
    return unsqueeze.input[0]


def _constant_int(graph: _Graph, value: str) -> int | None:
    node = graph.nodes[graph.producer[value]] if value in graph.producer else None
    if node is None or node.op_type != "Constant":
        return None
    return int(numpy_helper.to_array(node.attribute[0].t))


def _feature_dim(model: onnx.ModelProto, features: str) -> int:
    inferred = onnx.shape_inference.infer_shapes(model)
    for info in inferred.graph.value_info:
        if info.name == features:
            dims = info.type.tensor_type.shape.dim
            if len(dims) == 2 and dims[1].dim_value:
                return dims[1].dim_value
    raise ChunkingError(f"the pooled features {features} have no known width")


def _chunk_nodes(
    body: list[onnx.NodeProto],
    encoder_input: str,
    features: str,
    renamed: dict[str, str],
    frames: int,
    chunk: int,
    feature_dim: int,
) -> list[onnx.NodeProto]:
    """The encoder once per chunk, then its features put back in (clip, frame) order."""
    made = {value for node in body for value in node.output}

    def ints(name: str, values: Iterable[int]) -> onnx.NodeProto:
        values = list(values)
        tensor = helper.make_tensor(name, TensorProto.INT64, [len(values)], values)
        return helper.make_node("Constant", [], [name], value=tensor)

    prefix = CHUNK_PREFIX
    out = [
        ints(f"{prefix}frames_axis", [1]),
        ints(f"{prefix}step", [chunk]),
        ints(f"{prefix}zero", [0]),
        ints(f"{prefix}clips_shape", [-1, frames]),
        ints(f"{prefix}minus_one", [-1]),
        helper.make_node("Shape", [encoder_input], [f"{prefix}image_shape"], start=1),
        # (clips, frames, 3, H, W) to slice frames from, and (images, 3, H, W) for a chunk
        *(
            helper.make_node("Concat", [f"{prefix}{lead}", f"{prefix}image_shape"], [name], axis=0)
            for lead, name in (
                ("clips_shape", f"{prefix}clip_shape"),
                ("minus_one", f"{prefix}batch_shape"),
            )
        ),
        helper.make_node("Reshape", [encoder_input, f"{prefix}clip_shape"], [f"{prefix}clips"]),
        ints(f"{prefix}chunk_features_shape", [-1, chunk, feature_dim]),
    ]
    previous_start, pieces = f"{prefix}zero", []
    for k in range(frames // chunk):
        tag = f"{prefix}{k}/"
        start = f"{tag}start"
        if k == 0:
            out.append(helper.make_node("Identity", [previous_start], [start]))
        else:
            # The previous chunk's features decide this chunk's first frame (min(rows, 0) is
            # 0): a data dependency, so the chunks cannot run side by side.
            rows = f"{tag}previous_rows"
            out.append(helper.make_node("Shape", [pieces[-1]], [rows], start=0, end=1))
            out.append(helper.make_node("Min", [rows, f"{prefix}zero"], [f"{tag}nothing"]))
            out.append(helper.make_node("Add", [previous_start, f"{tag}nothing"], [f"{tag}at"]))
            out.append(helper.make_node("Add", [f"{tag}at", f"{prefix}step"], [start]))
        out.append(helper.make_node("Add", [start, f"{prefix}step"], [f"{tag}end"]))
        out.append(
            helper.make_node(
                "Slice",
                [f"{prefix}clips", start, f"{tag}end", f"{prefix}frames_axis"],
                [f"{tag}clips"],
            )
        )
        out.append(
            helper.make_node("Reshape", [f"{tag}clips", f"{prefix}batch_shape"], [f"{tag}images"])
        )
        names = {encoder_input: f"{tag}images"} | {v: tag + v for v in made}
        for node in body:
            copied = copy.deepcopy(node)
            copied.name = tag + node.name
            for j, value in enumerate(copied.input):
                value = renamed.get(value, value)
                copied.input[j] = names.get(value, value)
            for j, value in enumerate(copied.output):
                copied.output[j] = names[value]
            out.append(copied)
        piece = f"{tag}features"
        out.append(
            helper.make_node("Reshape", [names[features], f"{prefix}chunk_features_shape"], [piece])
        )
        previous_start = start
        pieces.append(piece)
    out.append(helper.make_node("Concat", pieces, [f"{prefix}features"], axis=1))
    out.append(ints(f"{prefix}flat_shape", [-1, feature_dim]))
    out.append(
        helper.make_node("Reshape", [f"{prefix}features", f"{prefix}flat_shape"], [features])
    )
    for node in out:  # named after what they make, under the prefix (see `is_chunked`)
        node.name = node.name or prefix + node.output[0].removeprefix(prefix)
    return out


def _rename_inputs(node: onnx.NodeProto, replacements: dict[str, str]) -> None:
    for j, value in enumerate(node.input):
        if value in replacements:
            node.input[j] = replacements[value]


def _drop_unused(model: onnx.ModelProto) -> None:
    """Nodes whose outputs nothing reads (the skipped round trips' shape arithmetic and its
    constants), then initializers no node reads."""
    graph = model.graph
    wanted = {output.name for output in graph.output}
    kept: list[onnx.NodeProto] = []
    for node in reversed(graph.node):
        if set(node.output) & wanted:
            kept.append(node)
            wanted.update(node.input)
    del graph.node[:]
    graph.node.extend(reversed(kept))
    initializers = [t for t in graph.initializer if t.name in wanted]
    del graph.initializer[:]
    graph.initializer.extend(initializers)
