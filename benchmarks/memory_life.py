"""Resident memory over a service's life, used as people use it: does anything grow for good?

    python benchmarks/memory_life.py [--sizes 384] [--openvino-sizes-kept 16]

1. The API (no worker), in turn: /classify with each classifier (3 calls each); each classifier
   on a 60 s video in 2 s windows; a preview in each named style, then one with a painting.
2. One worker (its pool child, which runs the jobs), in turn: idle; a job in each named style; one
   with a painting; a 1080p upload (painted at 1280x720); the 320x240 clip again.
3. A style network on OpenVINO as workers run it, over `--sizes` frame sizes, each smaller than
   the first it ran (so none needs more working memory): resident memory every 64 sizes;
   `--openvino-sizes-kept 5000` shows OpenVINO's own default.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import httpx
import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path[:0] = [str(REPO_ROOT), str(BENCH_DIR), str(REPO_ROOT / "scripts")]

from bench import UCF_CLIP, classify_in_windows, looped_video, run_job  # noqa: E402
from stack import rss_mib, running_stack, tree_pids  # noqa: E402

from service.contract.manifest import load_manifest  # noqa: E402
from service.inference import networks  # noqa: E402
from service.inference.memory import release_freed_heap  # noqa: E402

MODELS = REPO_ROOT / "exported_models"
PAINTING = REPO_ROOT.parent / "shared" / "data" / "styles" / "reference" / "starry_night.jpg"
QUIET = {"ACTIONSTYLE_LOG_LEVEL": "WARNING"}


def api_life(classifiers: list[str], styles: list[str], window_video: Path) -> None:
    with (
        running_stack(workers=0, models_dir=MODELS, extra_env=QUIET) as stack,
        httpx.Client(base_url=stack.url, timeout=300) as client,
    ):
        for model in classifiers:
            for _ in range(3):
                with UCF_CLIP.open("rb") as clip:
                    files = {"file": (UCF_CLIP.name, clip)}
                    client.post(f"/classify?model={model}", files=files).raise_for_status()
        print(f"after /classify with each classifier   {rss_mib(stack.api_pid):6.0f} MiB")
        classify_in_windows(stack.url, classifiers, window_video)
        print(f"after a 60 s video in 2 s windows each {rss_mib(stack.api_pid):6.0f} MiB")
        _, frame = cv2.VideoCapture(str(UCF_CLIP)).read()
        picture = {"image": ("frame.jpg", cv2.imencode(".jpg", frame)[1].tobytes())}
        for style in styles:
            client.post("/stylize/preview", files=picture, data={"style": style}).raise_for_status()
            print(f"after a preview in {style:<20}{rss_mib(stack.api_pid):6.0f} MiB")
        painting = {**picture, "style_image": (PAINTING.name, PAINTING.read_bytes())}
        client.post("/stylize/preview", files=painting).raise_for_status()
        print(f"after a preview with a painting        {rss_mib(stack.api_pid):6.0f} MiB")


def worker_life(styles: list[str], hd_video: Path) -> None:
    with running_stack(workers=1, models_dir=MODELS, extra_env=QUIET) as stack:
        time.sleep(2)  # the pool child starts after the worker's ready line

        def report(what: str) -> None:
            child = tree_pids(stack.worker_pids[0])[-1]
            print(f"{what:<40}{rss_mib(child):6.0f} MiB")

        def job(clip: Path, style: str | None) -> str:
            painting = None if style else PAINTING
            return run_job(stack.url, clip, style, painting=painting)[1]["state"]

        report("idle")
        for style in styles:
            report(f"after a job in {style} ({job(UCF_CLIP, style)})")
        report(f"after a job with a painting ({job(UCF_CLIP, None)})")
        report(f"after a 1080p job ({job(hd_video, styles[0])})")
        report(f"after the 320x240 clip again ({job(UCF_CLIP, styles[0])})")


def sizes_life(style: str, count: int) -> None:
    network = networks.OpenVinoNetwork(MODELS / "styles" / f"{style}.onnx", threads=1)
    network.run({"image": np.zeros((1, 3, 64, 96), np.float32)})
    sizes = [(height, width) for height in range(32, 64, 2) for width in range(48, 96, 2)]
    release_freed_heap()
    readings = [rss_mib(os.getpid())]
    for done, (height, width) in enumerate(sizes[:count], start=1):
        network.run({"image": np.zeros((1, 3, height, width), np.float32)})
        if done % 64 == 0:
            release_freed_heap()
            readings.append(rss_mib(os.getpid()))
    kept = networks.OPENVINO_SIZES_KEPT
    print(f"{style} on OpenVINO keeping {kept} sizes, every 64 new sizes: ", end="")
    print(" / ".join(f"{r:.0f}" for r in readings) + " MiB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, default=384, help="frame sizes for part 3 (<= 384)")
    parser.add_argument("--openvino-sizes-kept", type=int, default=networks.OPENVINO_SIZES_KEPT)
    args = parser.parse_args(argv)
    networks.OPENVINO_SIZES_KEPT = args.openvino_sizes_kept
    manifest = load_manifest(MODELS)
    classifiers = [entry.name for entry in manifest.classifiers]
    styles = [entry.name for entry in manifest.styles]
    with tempfile.TemporaryDirectory() as tmp:
        print("## API resident memory")
        api_life(classifiers, styles, looped_video(Path(tmp) / "60s.mp4", 60, size=(320, 240)))
        print("## worker (pool child) resident memory")
        worker_life(styles, looped_video(Path(tmp) / "hd.mp4", 6, size=(1920, 1080)))
    print("## one style network, resident memory of this process")
    sizes_life(styles[0], args.sizes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
