"""Phone HDR video (HLG, PQ) through the service's two paths: what it costs, what it changes.

    python benchmarks/hdr.py [--clips 60] [--seconds 5]

1. Stylize: a job in process (as benchmarks/stylize_speed.py runs one) on a 1080p HLG HEVC clip,
   whose frames are decoded, scaled to 1280x720 and tone-mapped to SDR, beside the same
   pictures as SDR H.264, in one run: the decode stage's busy time and the job's wall time.
2. Classify: the default classifier's top-1 and its share of confident answers on held-out
   clips as SDR H.264 and as HLG and PQ HEVC (made from the same frames and tagged as phones tag
   them; tests/utils/corpus.py), through the serving path (clips this short are decoded by
   OpenCV, which tone-maps HDR itself; long videos are read by seeking and mapped by
   service/video/hdr.py).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR.parent), str(BENCH_DIR)]

from stylize_speed import job_stages  # noqa: E402

from service.contract.manifest import load_manifest, load_manifest_content  # noqa: E402
from service.inference.classifier import classify, load_classifier  # noqa: E402
from service.video.decode import DecodeLimits  # noqa: E402
from service.video.hdr import to_sdr  # noqa: E402
from tests.utils.corpus import real_frames, write_hdr_video, write_video  # noqa: E402
from tests.utils.data import AUDIO_CLIP, SHARED_DATA  # noqa: E402
from training.classify.codec_check import held_out_clips, source_frames  # noqa: E402

HLG = 18  # ITU-R BT.2100's transfer tag
MODELS = Path(__file__).resolve().parents[1] / "exported_models"


def job_cost(work: Path, seconds: int) -> None:
    pictures = real_frames(AUDIO_CLIP, 30 * seconds, (320, 240))
    pictures = [cv2.resize(p, (1920, 1080), interpolation=cv2.INTER_CUBIC) for p in pictures]
    clips = {
        "HLG HEVC 10-bit": write_hdr_video(work / "hlg.mov", pictures, "hlg", fps=30),
        "SDR H.264": write_video(work / "sdr.mp4", pictures, fps=30),
    }
    style = load_manifest(MODELS).styles[0]
    print(f"\n1080p30 source, {len(pictures)} frames -> 1280x720, {style.name}, 2 threads")
    print("  source           | decode busy s | ms/frame | job wall s")
    for name, clip in clips.items():
        row = job_stages(clip, MODELS / style.file, threads=2, runtime="openvino")
        per_frame = 1000 * row["decode"] / row["frames"]
        print(f"  {name:16s} | {row['decode']:13.2f} | {per_frame:8.1f} | {row['wall']:10.2f}")
    signal = (np.random.default_rng(0).random((720, 1280, 3)) * 50_000).astype(np.uint16)
    started = time.perf_counter()
    for _ in range(20):
        to_sdr(signal, HLG)
    per_frame = (time.perf_counter() - started) * 50
    print(f"  tone mapping alone, one 1280x720 frame on one thread: {per_frame:.1f} ms")


def classify_answers(work: Path, count: int) -> None:
    manifest = load_manifest_content(MODELS)
    entry = next(e for e in manifest.classifiers if e.name == manifest.default_classifier)
    classifier = load_classifier(MODELS, entry, intra_op_threads=2)
    clips = held_out_clips(SHARED_DATA, entry.name, entry.labels, entry.training)
    picked = sorted(np.random.default_rng(0).choice(len(clips), count, replace=False))
    right = {"SDR H.264": 0, "HLG": 0, "PQ": 0}
    confident = dict.fromkeys(right, 0)
    for i in tqdm(picked, desc="held-out clips", unit="clip"):
        clip = clips[i]
        frames, fps = source_frames(clip)
        frames = [f[: f.shape[0] // 2 * 2, : f.shape[1] // 2 * 2] for f in frames]
        videos = {"SDR H.264": write_video(work / f"{i}.mp4", frames, fps=round(fps))}
        for name in ("HLG", "PQ"):
            path = work / f"{i}.{name}.mov"
            videos[name] = write_hdr_video(path, frames, name.lower(), round(fps))
        for name, video in videos.items():
            answer = classify(video, classifier, 1, DecodeLimits())
            right[name] += answer.predictions[0].label == clip.label
            confident[name] += answer.confident
    print(f"\n{entry.name} on {count} held-out clips (seed 0), through the serving path")
    print("  clip as         | top-1   | confident")
    for name, n in right.items():
        print(f"  {name:15s} | {100 * n / count:5.1f} % | {100 * confident[name] / count:5.1f} %")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=60)
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        job_cost(Path(tmp), args.seconds)
        classify_answers(Path(tmp), args.clips)


if __name__ == "__main__":
    main()
