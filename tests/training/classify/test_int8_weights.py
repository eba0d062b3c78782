"""Large convolution weights kept as int8 per output channel: the same numbers in torch and ONNX."""

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from training.classify.int8_weights import round_conv_weights, store_conv_weights_as_int8


def test_rounded_weights_export_as_int8_and_compute_what_torch_computes(tmp_path: Path) -> None:
    torch.manual_seed(0)
    network = nn.Sequential(
        nn.Conv3d(3, 64, 3, padding=1), nn.ReLU(), nn.Conv3d(64, 64, 3), nn.Conv3d(64, 2, 1)
    ).eval()
    original = [m.weight.detach().clone() for m in network if isinstance(m, nn.Conv3d)]
    round_conv_weights(network)
    rounded = [m.weight.detach() for m in network if isinstance(m, nn.Conv3d)]
    # the two large convolutions move by at most half a step of their channel's grid; the small
    # last one (128 values, under the size limit) stays as it was
    for before, after in zip(original[:2], rounded[:2], strict=True):
        step = before.abs().flatten(1).max(1).values / 127
        assert (after - before).abs().max() > 0 and (
            (after - before).abs().flatten(1).max(1).values <= step / 2 + 1e-7
        ).all()
        assert len(torch.unique(after[0])) <= 255
    assert torch.equal(original[2], rounded[2])

    path = tmp_path / "net.onnx"
    clip = torch.randn(2, 3, 4, 8, 8)
    torch.onnx.export(network, (clip,), str(path), input_names=["x"], dynamo=False)
    float_size = path.stat().st_size
    assert store_conv_weights_as_int8(path) == 2
    assert path.stat().st_size < float_size / 3
    model = onnx.load(str(path))
    assert sum(n.op_type == "DequantizeLinear" for n in model.graph.node) == 2
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (onnx_out,) = session.run(None, {"x": clip.numpy()})
    with torch.no_grad():
        expected = network(clip).numpy()
    np.testing.assert_allclose(onnx_out, expected, atol=1e-5)


def test_weights_torch_left_in_float32_stay_float32_in_the_file(tmp_path: Path) -> None:
    torch.manual_seed(0)
    rounded, kept = nn.Conv3d(3, 64, 3, padding=1), nn.Conv3d(64, 64, 3)
    round_conv_weights(rounded)  # as the fusion rounds I3D but not its Lite0 branch
    network = nn.Sequential(rounded, nn.ReLU(), kept).eval()
    path = tmp_path / "net.onnx"
    clip = torch.randn(1, 3, 4, 8, 8)
    torch.onnx.export(network, (clip,), str(path), input_names=["x"], dynamo=False)

    assert store_conv_weights_as_int8(path) == 1

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        np.testing.assert_allclose(
            session.run(None, {"x": clip.numpy()})[0], network(clip), atol=1e-5
        )
