"""Style networks on OpenVINO, as workers run them: the pictures onnxruntime paints, any frame
size, calls side by side; and the setting that chooses the runtime."""

from __future__ import annotations

import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper
from pydantic import ValidationError

from service.contract.manifest import load_manifest
from service.inference.memory import release_freed_heap
from service.inference.networks import OnnxRuntimeNetwork, OpenVinoNetwork, open_network
from service.inference.styles import StyleEngines
from service.inference.stylize import FeedForwardStyle
from service.settings import Settings
from tests.utils.corpus import decoded_frames
from tests.utils.data import REPO_ROOT, YOYO_CLIP
from tests.utils.styles import conv_style_onnx
from training.styles.metrics import ssim

MODELS = REPO_ROOT / "exported_models"
STYLES = ["vangogh", "ukiyoe", "monet", "cezanne"]


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    """Three 320x240 frames of a real UCF101 clip, spread over it."""
    decoded = decoded_frames(YOYO_CLIP)
    return [decoded[i] for i in (0, len(decoded) // 2, len(decoded) - 1)]


@pytest.mark.parametrize("style", STYLES)
def test_openvino_paints_what_onnxruntime_paints(style: str, frames: list[np.ndarray]) -> None:
    # bfloat16 where the CPU has it: issue #20 allows SSIM >= 0.97 against float32 output.
    model = MODELS / "styles" / f"{style}.onnx"
    exact = FeedForwardStyle(model, threads=2, runtime="onnxruntime")(frames)
    served = FeedForwardStyle(model, threads=2, runtime="openvino")(frames)
    for reference, picture in zip(exact, served, strict=True):
        assert picture.shape == reference.shape and picture.dtype == np.uint8
        assert ssim(picture, reference) >= 0.97


def test_openvino_takes_any_frame_size() -> None:
    engine = FeedForwardStyle(MODELS / "styles" / "vangogh.onnx", threads=1, runtime="openvino")
    rng = np.random.default_rng(0)
    for height, width in ((30, 42), (240, 320), (97, 181)):  # not all multiples of 4: padded
        frame = rng.integers(0, 255, (height, width, 3), np.uint8)
        assert engine([frame])[0].shape == (height, width, 3)


def test_openvino_runs_calls_side_by_side(frames: list[np.ndarray]) -> None:
    network = OpenVinoNetwork(MODELS / "styles" / "vangogh.onnx", threads=1, concurrent=2)
    inputs = [np.ascontiguousarray(f.transpose(2, 0, 1)[None], np.float32) / 255 for f in frames]
    alone = [network.run({"image": x}) for x in inputs]
    barrier = threading.Barrier(2, timeout=10)

    def together(x: np.ndarray) -> np.ndarray:
        barrier.wait()  # both calls start at once: each needs an inference request of its own
        return network.run({"image": x}, "stylized")

    with ThreadPoolExecutor(2) as pool:
        pairs = list(pool.map(together, inputs[:2]))
    for first, second in zip(alone, pairs, strict=False):
        np.testing.assert_array_equal(first, second)  # no call got the other's output


def _determinant_onnx() -> bytes:
    """A network with a layer (ONNX's Det) that onnxruntime runs and OpenVINO has no conversion
    for, on any CPU."""
    graph = helper.make_graph(
        [helper.make_node("Det", ["matrices"], ["determinants"])],
        "determinant",
        [helper.make_tensor_value_info("matrices", TensorProto.FLOAT, [2, 3, 3])],
        [helper.make_tensor_value_info("determinants", TensorProto.FLOAT, [2])],
    )
    opsets = [helper.make_opsetid("", 17)]
    return helper.make_model(graph, opset_imports=opsets).SerializeToString()


def test_a_network_openvino_cannot_compile_runs_on_onnxruntime(caplog) -> None:
    # A style added with a layer OpenVINO cannot run (Magenta's predictor in bfloat16, on some
    # CPUs) still paints, on onnxruntime, and the worker's log says why.
    network = open_network(_determinant_onnx(), "openvino", threads=1)
    assert isinstance(network, OnnxRuntimeNetwork)
    assert "OpenVINO cannot compile this network; onnxruntime runs it" in caplog.text
    matrices = np.stack([np.eye(3, dtype=np.float32) * 2, np.eye(3, dtype=np.float32)])
    np.testing.assert_allclose(network.run({"matrices": matrices}), [8.0, 1.0], rtol=1e-5)


def test_workers_paint_on_openvino_and_the_api_on_onnxruntime(monkeypatch) -> None:
    monkeypatch.delenv("ACTIONSTYLE_STYLE_RUNTIME", raising=False)
    assert Settings().style_runtime == "openvino"
    monkeypatch.setenv("ACTIONSTYLE_STYLE_RUNTIME", "onnxruntime")
    assert Settings().style_runtime == "onnxruntime"
    monkeypatch.setenv("ACTIONSTYLE_STYLE_RUNTIME", "tensorflow")
    with pytest.raises(ValidationError, match="style_runtime"):
        Settings()

    manifest = load_manifest(MODELS)
    worker = StyleEngines(MODELS, manifest, threads=1, runtime="openvino", concurrent=2)
    api = StyleEngines(MODELS, manifest, threads=1)
    assert isinstance(worker.named("vangogh").network, OpenVinoNetwork)  # type: ignore[attr-defined]
    assert isinstance(api.named("vangogh").network, OnnxRuntimeNetwork)  # type: ignore[attr-defined]


FIRST_CALLS_SIDE_BY_SIDE = """
import sys, threading
import numpy as np
from service.inference.networks import OpenVinoNetwork

network = OpenVinoNetwork(sys.argv[1], threads=1, concurrent=2)
barrier = threading.Barrier(2)
x = np.zeros((1, 3, 24, 32), np.float32)

def first_call():
    barrier.wait()
    network.run({"image": x})

threads = [threading.Thread(target=first_call) for _ in range(2)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
"""


def test_a_fresh_process_may_start_two_frames_at_once(tmp_path: Path) -> None:
    # A worker's first job paints two frames at once: OpenVINO's bindings deadlocked there (one
    # fresh process in five with this tiny network) when both threads handed over their first
    # array together, until the network loader hands one over first.
    network = conv_style_onnx(tmp_path / "tiny.onnx")
    for _ in range(12):
        subprocess.run(
            [sys.executable, "-c", FIRST_CALLS_SIDE_BY_SIDE, str(network)],
            cwd=REPO_ROOT,
            check=True,
            timeout=30,
        )


def _resident_mib() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def test_a_worker_does_not_grow_with_every_frame_size_it_meets() -> None:
    # Users' videos come in many sizes, and OpenVINO keeps what it prepared for each size it ran
    # (0.6-1.3 MiB): unbounded, a long-lived worker would grow by that for each new size, for good.
    network = OpenVinoNetwork(MODELS / "styles" / "vangogh.onnx", threads=1)
    sizes = [(height, width) for height in range(32, 64, 2) for width in range(48, 96, 2)]

    def run(some: list[tuple[int, int]]) -> float:
        for height, width in some:
            network.run({"image": np.zeros((1, 3, height, width), np.float32)})
        release_freed_heap()
        return _resident_mib()

    run([(64, 96)] + sizes[:256])  # what stays once the kept sizes are full
    settled = _resident_mib()
    assert run(sizes[256:]) - settled < 20  # 128 new sizes: ~75 MiB more without a bound
