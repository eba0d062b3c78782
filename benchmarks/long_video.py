"""/classify on long phone-style videos: frames read by seeking against decoding every frame.

Writes each video (real frames of a shared clip, moved about so that every frame costs what a
phone's does to decode) unless it exists, then times the default classifier's frame reading both
ways, alternating, in one run; prints a table, not a test.

    python benchmarks/long_video.py [--seconds 60] [--rounds 3] [--out runs/long_videos]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import av
import cv2
import numpy as np

from service.contract.manifest import load_manifest
from service.video.decode import DecodeLimits, read_sampled_frames

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO.parent / "shared" / "data" / "ucf101" / "YoYo" / "v_YoYo_g01_c01.avi"
# (name, width, height, fps, seconds between keyframes): what phones and cameras write.
VIDEOS = [
    ("phone_1080p30", 1920, 1080, 30, 1),
    ("camera_720p25", 1280, 720, 25, 2),
    ("screen_480p30", 854, 480, 30, 4),
]


def write_video(path: Path, width: int, height: int, fps: int, gop_s: int, seconds: int) -> None:
    frames = []
    with av.open(str(SOURCE)) as source:
        for frame in source.decode(video=0):
            frames.append(cv2.resize(frame.to_ndarray(format="rgb24"), (width, height)))
    grain = np.random.default_rng(0).integers(0, 12, (height, width, 3), dtype=np.uint8)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": "veryfast", "crf": "20", "g": str(fps * gop_s)}
        for i in range(fps * seconds):
            picture = frames[i % len(frames)]
            picture = cv2.add(np.roll(picture, (i * 7) % width, axis=1), np.roll(grain, i, axis=0))
            out.mux(video.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
        out.mux(video.encode(None))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "long_videos")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest(REPO / "exported_models")
    spec = next(c for c in manifest.classifiers if c.name == manifest.default_classifier).input
    ways = {
        "every frame decoded": DecodeLimits(seek_above_pixels=None),
        "seeking": DecodeLimits(),
    }
    print(f"{spec.frames} frames at short side {spec.resize_short}, {args.rounds} rounds each")
    print("| video | size | keyframes | every frame decoded | seeking | ratio | same frames |")
    print("|---|---|---|---|---|---|---|")
    for name, width, height, fps, gop_s in VIDEOS:
        path = args.out / f"{name}_{args.seconds}s.mp4"
        if not path.exists():
            write_video(path, width, height, fps, gop_s, args.seconds)
        times: dict[str, list[float]] = {way: [] for way in ways}
        picked: dict[str, list[np.ndarray]] = {}
        for _ in range(args.rounds):
            for way, limits in ways.items():
                started = time.perf_counter()
                picked[way], _ = read_sampled_frames(path, spec.frames, spec.resize_short, limits)
                times[way].append(time.perf_counter() - started)
        full, sought = (statistics.median(times[way]) for way in ways)
        same = all(np.array_equal(a, b) for a, b in zip(*picked.values(), strict=True))
        size = f"{width}x{height} {fps} fps {args.seconds} s, {path.stat().st_size / 2**20:.0f} MiB"
        print(
            f"| {name} | {size} | every {gop_s} s | {full:.2f} s | {sought:.2f} s "
            f"| {full / sought:.1f}x | {'yes' if same else 'NO'} |"
        )


if __name__ == "__main__":
    main()
