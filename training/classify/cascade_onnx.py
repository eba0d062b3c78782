"""One ONNX file for a cascade: the cheap branch on every clip, the costly one only where needed.

`I3DEffNetTemporal.cascade` answers a clip from Lite0 alone when Lite0 is sure of it, and runs
I3D only on the others. torch's exporter records one path through that `if`, so the file is put
together from two exports: the Lite0 part (log-probabilities, distance, which clips go on) and
the I3D part (log-probabilities, distance), the latter inside an ONNX `If` that runs when any
clip of the batch goes on, on those clips only (Gather), their answers written back (ScatterND).
Each clip's outputs are thus the same whatever else is in its batch. The file keeps the usual
contract: input `clip`, outputs `logits` and `ood_distance`.

    export_cascade_onnx(open_set_model, spec, path, int8_weights=True)
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import onnx
import torch
from onnx import TensorProto, compose, helper
from torch import nn

from service.video.preprocess import ClipSpec
from training.classify.clip_onnx import export_clip_module
from training.classify.int8_weights import store_conv_weights_as_int8
from training.classify.models.i3d_effnet_temporal import I3DEffNetTemporal, lite0_frames
from training.classify.open_set import ClassDistance

FRAME_OUTPUTS = ["frame_log_probs", "frame_distance", "rest", "rest_2d", "any_rest"]
VIDEO_OUTPUTS = ["video_log_probs", "video_distance"]


class _FramePart(nn.Module):
    def __init__(self, model: I3DEffNetTemporal) -> None:
        super().__init__()
        self.model = model

    def forward(self, clip: torch.Tensor) -> tuple[torch.Tensor, ...]:
        log_probs, embedding = self.model.frames.logits_and_ood_embedding(lite0_frames(clip))
        exits, distance = self.model.frame_exit(log_probs, embedding)
        rest_2d = torch.nonzero(~exits)  # (N, 1)
        return log_probs, distance, rest_2d[:, 0], rest_2d, (~exits).any()


class _VideoPart(nn.Module):
    def __init__(self, model: I3DEffNetTemporal, distance: ClassDistance) -> None:
        super().__init__()
        self.model = model
        self.distance = distance

    def forward(self, clip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_probs, embedding = self.model.video.logits_and_ood_embedding(clip)
        return log_probs, self.distance(embedding)


def _export(module: nn.Module, spec: ClipSpec, path: Path, outputs: list[str]) -> onnx.ModelProto:
    export_clip_module(module, spec, path, outputs, batch_outputs=False)
    return onnx.load(str(path))


def _float_output(name: str, *dims: str | int) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", *dims])


def export_cascade_onnx(
    model: I3DEffNetTemporal,
    video_distance: ClassDistance,
    spec: ClipSpec,
    path: Path,
    int8_weights: bool,
) -> None:
    """Write the cascade of `model` (its `frame_exit` fitted) with I3D's `video_distance`."""
    with tempfile.TemporaryDirectory() as folder:
        frames = _export(_FramePart(model), spec, Path(folder) / "frames.onnx", FRAME_OUTPUTS)
        video_path = Path(folder) / "video.onnx"
        _export(_VideoPart(model, video_distance), spec, video_path, VIDEO_OUTPUTS)
        if int8_weights:
            store_conv_weights_as_int8(video_path)
        video = onnx.load(str(video_path))
    frames = compose.add_prefix(frames, "frames/", rename_inputs=False, rename_outputs=False)
    video = compose.add_prefix(video, "video/")
    classes = model.frames.head.members[0].classifier.out_features
    half = helper.make_tensor("half", TensorProto.FLOAT, [], [0.5])
    then_branch = helper.make_graph(
        [
            helper.make_node("Gather", ["clip", "rest"], ["video/clip"], axis=0),
            *video.graph.node,
            helper.make_node("Gather", ["frame_log_probs", "rest"], ["frames_of_rest"], axis=0),
            helper.make_node("Add", ["frames_of_rest", "video/video_log_probs"], ["summed"]),
            helper.make_node("Mul", ["summed", "half"], ["fused"]),
            helper.make_node("ScatterND", ["frame_log_probs", "rest_2d", "fused"], ["logits_i3d"]),
            helper.make_node(
                "ScatterND", ["frame_distance", "rest_2d", "video/video_distance"], ["distance_i3d"]
            ),
        ],
        "i3d_on_the_rest",
        inputs=[],
        outputs=[_float_output("logits_i3d", classes), _float_output("distance_i3d")],
    )
    else_branch = helper.make_graph(
        [
            helper.make_node("Identity", ["frame_log_probs"], ["logits_lite0"]),
            helper.make_node("Identity", ["frame_distance"], ["distance_lite0"]),
        ],
        "lite0_alone",
        inputs=[],
        outputs=[_float_output("logits_lite0", classes), _float_output("distance_lite0")],
    )
    graph = helper.make_graph(
        [
            *frames.graph.node,
            helper.make_node(
                "If",
                ["any_rest"],
                ["logits", "ood_distance"],
                then_branch=then_branch,
                else_branch=else_branch,
            ),
        ],
        "i3d_effnet_temporal_cascade",
        inputs=list(frames.graph.input),
        outputs=[_float_output("logits", classes), _float_output("ood_distance")],
        initializer=[*frames.graph.initializer, *video.graph.initializer, half],
    )
    combined = helper.make_model(graph, opset_imports=list(frames.opset_import))
    combined.ir_version = frames.ir_version
    onnx.checker.check_model(combined)
    onnx.save(combined, str(path))
