"""Keep a large frozen encoder's convolution weights as int8 per output channel, in torch and ONNX.

I3D's 12.3 M float32 weights would make a 49 MB ONNX file; as int8 with one float scale per
output channel they take 12 MB. The torch model is rounded to those same values first
(`round_conv_weights`), so training, evaluation and the exported file compute with identical
weights and the export's parity check still holds; the ONNX file stores the int8 values and a
DequantizeLinear in front of each convolution (`store_conv_weights_as_int8`). Activations stay
float32: only storage changes.

    round_conv_weights(network)           # in torch, before features are computed
    store_conv_weights_as_int8(onnx_path) # after torch.onnx.export
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper
from torch import nn

INT8_MAX = 127
# A rounded float32 weight divided by its scale is an integer to about 1e-5; float32 weights
# that were never rounded are anywhere between two steps.
ON_GRID_TOLERANCE = 1e-3


def _per_channel_scale(weight: np.ndarray) -> np.ndarray:
    peak = np.abs(weight.reshape(weight.shape[0], -1)).max(axis=1)
    return np.where(peak > 0, peak / INT8_MAX, 1.0).astype(np.float32)


@torch.no_grad()
def round_conv_weights(module: nn.Module, min_size: int = 4096) -> nn.Module:
    """Round each convolution's weight (of at least `min_size` values) to the int8 grid of its
    output channels, in place; returns `module`."""
    for conv in module.modules():
        if isinstance(conv, nn.Conv1d | nn.Conv2d | nn.Conv3d) and conv.weight.numel() >= min_size:
            weight = conv.weight.detach().cpu().numpy()
            scale = _per_channel_scale(weight).reshape(-1, *([1] * (weight.ndim - 1)))
            rounded = np.clip(np.round(weight / scale), -INT8_MAX, INT8_MAX) * scale
            conv.weight.copy_(torch.from_numpy(rounded.astype(np.float32)))
    return module


def store_conv_weights_as_int8(path: Path, min_size: int = 4096) -> int:
    """Rewrite the ONNX file at `path`: each Conv weight initializer of at least `min_size`
    values that `round_conv_weights` put on the int8 grid becomes int8 + per-channel scales +
    DequantizeLinear, and comes back to within a rounding of float32. Weights off the grid (an
    encoder the torch model keeps in float32 beside a rounded one) stay as they are. Returns
    how many were stored as int8."""
    model = onnx.load(str(path))
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    stored, dequantize = 0, []
    for node in graph.node:
        if node.op_type != "Conv" or node.input[1] not in initializers:
            continue
        name = node.input[1]
        weight = numpy_helper.to_array(initializers[name])
        if weight.size < min_size:
            continue
        scale = _per_channel_scale(weight)
        broadcast = scale.reshape(-1, *([1] * (weight.ndim - 1)))
        steps = weight / broadcast
        if np.abs(steps - np.round(steps)).max() > ON_GRID_TOLERANCE:
            continue
        quantised = np.clip(np.round(steps), -INT8_MAX, INT8_MAX).astype(np.int8)
        graph.initializer.remove(initializers.pop(name))
        graph.initializer.extend(
            [
                numpy_helper.from_array(quantised, f"{name}_int8"),
                numpy_helper.from_array(scale, f"{name}_scale"),
                numpy_helper.from_array(np.zeros_like(scale, dtype=np.int8), f"{name}_zero"),
            ]
        )
        dequantize.append(
            helper.make_node(
                "DequantizeLinear",
                [f"{name}_int8", f"{name}_scale", f"{name}_zero"],
                [name],
                name=f"{name}_dequantize",
                axis=0,
            )
        )
        stored += 1
    for node in reversed(dequantize):  # before every node: the graph stays in order
        graph.node.insert(0, node)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return stored
