"""A style network on one of two CPU runtimes: onnxruntime, or OpenVINO for workers' jobs.

Both take the same ONNX file (or its checked bytes) and give the same `run(feeds)`. OpenVINO
paints the named styles faster than onnxruntime (`benchmarks/stylize_speed.py`: 2.4x on an AMD
EPYC with avx512_bf16, 5x on a Xeon with AMX): it runs them in bfloat16 where the CPU has
bfloat16 units (its default there; float32 elsewhere), against onnxruntime's float32. The
pictures differ from float32's by SSIM 0.985-1.000 a frame and their KID to the painters by 0.1 %
(`python -m training styles heldout --runtime openvino`). Workers use it for jobs
(`ACTIONSTYLE_STYLE_RUNTIME`); the API keeps onnxruntime for its one-frame previews, so it does
not pay OpenVINO's ~75 MiB.

    network = open_network(Path("vangogh.onnx"), "openvino", threads=2, concurrent=2)
    stylised = network.run({"image": batch}, "stylized")   # callable from `concurrent` threads
"""

from __future__ import annotations

import logging
import queue
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import onnxruntime as ort

from service.inference.memory import use_arena
from service.inference.providers import execution_providers
from service.settings import MemoryArena, StyleRuntime

if TYPE_CHECKING:
    import openvino

__all__ = ["Network", "StyleRuntime", "make_session", "open_network"]

logger = logging.getLogger(__name__)

OPENVINO_SIZES_KEPT = 16


class Network(Protocol):
    input_names: list[str]

    def run(self, feeds: dict[str, np.ndarray], output: str | None = None) -> np.ndarray:
        """The named output (the first when None) for these inputs; safe from several threads."""
        ...


def make_session(
    model: Path | bytes, threads: int, arena: MemoryArena = "per_session"
) -> ort.InferenceSession:
    """An onnxruntime session from a file or from the bytes of one (already checked).

    A session's own arena keeps what one 320x240 pass needed (about 45 MB for a student) for
    the life of the session: "off" for a session that runs once, "shared" for sessions of a
    process that keeps many (the API's previews, beside its classifiers); see `use_arena`.
    """
    options = ort.SessionOptions()
    use_arena(options, arena)
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # A style network runs beside the job's decode, flow and encode threads: threads that spin
    # between calls take cores those stages need (5-12 % slower jobs on 2 cores, and 2x slower
    # inference when the machine is busy; benchmarks/stylize_speed.py).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, options, providers=execution_providers())


class OnnxRuntimeNetwork:
    """An onnxruntime session; its `run` is thread-safe, each call on `threads` threads."""

    def __init__(
        self, model: Path | bytes, threads: int, arena: MemoryArena = "per_session"
    ) -> None:
        self.session = make_session(model, threads, arena)
        self.input_names = [item.name for item in self.session.get_inputs()]

    def run(self, feeds: dict[str, np.ndarray], output: str | None = None) -> np.ndarray:
        return self.session.run(None if output is None else [output], feeds)[0]


@cache
def _openvino_core() -> openvino.Core:
    import openvino  # imported on first use: an API without OpenVINO classifiers never pays for it

    # OpenVINO's bindings set up their numpy interface on the first array they are handed, and
    # two threads doing that at once deadlock (seen: two frames in flight, about 1 job in 4).
    # One array handed over here, on the thread that loads the network, sets it up safely.
    openvino.Tensor(np.zeros(1, np.float32))
    return openvino.Core()


class OpenVinoNetwork:
    """An OpenVINO model compiled for the CPU, any input size (shapes are dynamic), or only the
    `fixed_shapes` given (input name -> shape; benchmarks measure networks both ways).

    `concurrent` calls run side by side on `threads` threads each, every call on an inference
    request of its own (a request serves one call at a time).
    """

    def __init__(
        self,
        model: Path | bytes,
        threads: int,
        concurrent: int = 1,
        fixed_shapes: dict[str, list[int]] | None = None,
    ) -> None:
        concurrent = max(1, concurrent)
        core = _openvino_core()
        graph = core.read_model(model)
        if fixed_shapes:
            graph.reshape(fixed_shapes)
        compiled = core.compile_model(
            graph,
            "CPU",
            {
                "PERFORMANCE_HINT": "THROUGHPUT",
                "NUM_STREAMS": concurrent,
                "INFERENCE_NUM_THREADS": max(1, threads) * concurrent,
                # Not pinned: several workers on one host, and each job's decode, flow and
                # encode threads, share the cores with the network.
                "ENABLE_CPU_PINNING": False,
                # The CPU plugin keeps what it prepared for each input size it has run, ~1.3 MiB
                # a size and 5,000 sizes by default: a worker painting users' videos of many
                # sizes would grow for good. A job paints one size throughout.
                "CPU_RUNTIME_CACHE_CAPACITY": OPENVINO_SIZES_KEPT,
            },
        )
        self.input_names = [item.get_any_name() for item in compiled.inputs]
        # name -> shape, None for a dynamic dimension (as onnxruntime's NodeArg.shape has a name)
        self.input_shapes = {port.get_any_name(): _dims(port) for port in compiled.inputs}
        self.output_shapes = {port.get_any_name(): _dims(port) for port in compiled.outputs}
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        for _ in range(concurrent):
            self._requests.put(compiled.create_infer_request())

    def run(self, feeds: dict[str, np.ndarray], output: str | None = None) -> np.ndarray:
        return self.run_outputs(feeds, [output])[0]

    def run_outputs(
        self, feeds: dict[str, np.ndarray], outputs: list[str | None]
    ) -> list[np.ndarray]:
        """The named outputs (None: the first) of one call, as onnxruntime's `run` gives them."""
        request = self._requests.get()
        try:
            request.infer(feeds)
            tensors = [
                request.get_output_tensor(0) if name is None else request.get_tensor(name)
                for name in outputs
            ]
            return [tensor.data.copy() for tensor in tensors]  # the request reuses its buffers
        finally:
            self._requests.put(request)


def _dims(port: openvino.ConstOutput) -> list[int | None]:
    return [dim.get_length() if dim.is_static else None for dim in port.get_partial_shape()]


def open_network(
    model: Path | bytes,
    runtime: StyleRuntime,
    threads: int,
    concurrent: int = 1,
    arena: MemoryArena = "per_session",
) -> Network:
    """`model` on `runtime`, `threads` per call, ready for `concurrent` calls at once (onnxruntime
    sessions take any number). `arena` is onnxruntime's (see `make_session`). A network that
    OpenVINO cannot compile (Magenta's predictor in bfloat16 on a Xeon with AMX, for one) runs on
    onnxruntime instead."""
    if runtime == "openvino":
        try:
            return OpenVinoNetwork(model, threads, concurrent)
        except RuntimeError as error:  # a layer its CPU plugin has no kernel for, in bfloat16
            logger.warning("OpenVINO cannot compile this network; onnxruntime runs it: %s", error)
    return OnnxRuntimeNetwork(model, threads, arena)
