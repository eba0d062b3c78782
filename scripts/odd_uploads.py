"""Odd uploads against the whole service: every answer must be a success or a clear 4xx.

Builds videos in many codecs, containers and shapes from one real clip (PyAV), broken files and
odd pictures, sends each to POST /classify and POST /stylize (waiting for the job) and each picture
to POST /stylize/preview, and prints one line per answer. Exits 1 when anything answered 5xx, a
job failed for a reason other than its input, a job did not end in time, or a worker died. Starts
its own stack (scripts/stack.py) unless --url points at a running service.

    python scripts/odd_uploads.py [--url http://127.0.0.1:8000] [--style vangogh]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from fractions import Fraction
from pathlib import Path

import av
import cv2
import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stack import REPO_ROOT, running_stack  # noqa: E402

sys.path.insert(0, str(REPO_ROOT))
from tests.utils.corpus import (  # noqa: E402
    Audio,
    beeps,
    cut_without_reencoding,
    write_hdr_video,
    write_interlaced_video,
    write_recording,
)
from tests.utils.corpus import write_video as write_tagged_video  # noqa: E402
from tests.utils.hostile import audio_only_mp4  # noqa: E402

SOURCE = REPO_ROOT.parent / "shared" / "data" / "clips" / "v_ApplyEyeMakeup_g01_c01.avi"
JOB_TIMEOUT_S = 240.0
# Job errors that blame the service, not the upload.
SERVICE_FAULTS = ("internal error", "worker stopped", "took longer than the limit")

# name, container, codec, size, pixel format, frames, frame rate, extra codec options
VIDEOS: list[tuple[str, str, str, tuple[int, int], str, int, int, dict[str, str]]] = [
    ("mpeg4.avi", "avi", "mpeg4", (320, 240), "yuv420p", 75, 25, {}),
    ("msmpeg4v3.avi", "avi", "msmpeg4", (320, 240), "yuv420p", 75, 25, {}),
    ("mjpeg.avi", "avi", "mjpeg", (320, 240), "yuvj420p", 75, 25, {}),
    ("mpeg2.mpg", "mpeg", "mpeg2video", (320, 240), "yuv420p", 75, 25, {}),
    ("h264.mov", "mov", "libx264", (320, 240), "yuv420p", 75, 25, {}),
    ("h264.mkv", "matroska", "libx264", (320, 240), "yuv420p", 75, 25, {}),
    (
        "hevc.mp4",
        "mp4",
        "libx265",
        (320, 240),
        "yuv420p",
        75,
        25,
        {"x265-params": "log-level=none"},
    ),
    ("vp9.webm", "webm", "libvpx-vp9", (320, 240), "yuv420p", 75, 25, {}),
    ("av1.mp4", "mp4", "libsvtav1", (320, 240), "yuv420p", 75, 25, {}),
    ("prores.mov", "mov", "prores_ks", (320, 240), "yuv422p10le", 40, 25, {}),
    ("ffv1_444.mkv", "matroska", "ffv1", (321, 241), "yuv444p", 40, 25, {}),
    ("h264_10bit.mp4", "mp4", "libx264", (320, 240), "yuv420p10le", 75, 25, {}),
    ("h264_grey.mp4", "mp4", "libx264", (320, 240), "gray", 75, 25, {}),
    ("min_32x32.mp4", "mp4", "libx264", (32, 32), "yuv420p", 75, 25, {}),
    ("strip_16to1.mp4", "mp4", "libx264", (1280, 80), "yuv420p", 75, 25, {}),
    ("strip_1to16.mp4", "mp4", "libx264", (32, 512), "yuv420p", 75, 25, {}),
    ("strip_20to1.mp4", "mp4", "libx264", (1280, 64), "yuv420p", 75, 25, {}),
    ("tiny_16x16.mp4", "mp4", "libx264", (16, 16), "yuv420p", 10, 25, {}),
    ("uhd.mp4", "mp4", "libx264", (3840, 2160), "yuv420p", 12, 25, {"preset": "ultrafast"}),
    ("one_frame.mp4", "mp4", "libx264", (320, 240), "yuv420p", 1, 25, {}),
    ("two_frames.mp4", "mp4", "libx264", (320, 240), "yuv420p", 2, 25, {}),
    ("fps_1.mp4", "mp4", "libx264", (320, 240), "yuv420p", 8, 1, {}),
    ("fps_240.mp4", "mp4", "libx264", (320, 240), "yuv420p", 240, 240, {}),
]
PICTURES = [("frame.jpg", (320, 240)), ("1x1.png", (1, 1)), ("4x4.png", (4, 4))]
PICTURES += [("strip_2000x8.png", (2000, 8)), ("big_6000x4000.jpg", (6000, 4000))]


def source_frames(count: int) -> list[np.ndarray]:
    capture, frames = cv2.VideoCapture(str(SOURCE)), []
    while len(frames) < count and (read := capture.read())[0]:
        frames.append(read[1])
    capture.release()
    return frames


def write_video(path: Path, spec: tuple, frames: list[np.ndarray]) -> bool:
    _, container, codec, size, pix_fmt, count, rate, options = spec
    try:
        with av.open(str(path), "w", format=container) as output:
            stream = output.add_stream(codec, rate=rate)
            stream.width, stream.height = size
            stream.pix_fmt, stream.options = pix_fmt, options
            for i in range(count):
                image = cv2.resize(frames[i % len(frames)], size, interpolation=cv2.INTER_AREA)
                frame = av.VideoFrame.from_ndarray(image, format="bgr24")
                frame.pts, frame.time_base = i, Fraction(1, rate)
                output.mux(stream.encode(frame))
            output.mux(stream.encode())
        return True
    except (av.error.FFmpegError, ValueError):  # an encoder this PyAV build lacks
        return False


def build_uploads(folder: Path) -> list[Path]:
    frames, uploads = source_frames(75), []
    for spec in VIDEOS:
        path = folder / spec[0]
        if write_video(path, spec, frames):
            uploads.append(path)
        else:
            print(f"skipped {spec[0]}: this PyAV cannot encode {spec[2]}")
    whole = (folder / "h264.mov").read_bytes()
    broken = {
        "cut_in_half.mov": whole[: len(whole) // 2],
        "random.mp4": np.random.default_rng(0).bytes(200_000),
        "text.avi": b"not a video\n" * 100,
        "no_extension": whole,
        "UPPER.AVI": (folder / "mpeg4.avi").read_bytes(),
    }
    for name, data in broken.items():
        (folder / name).write_bytes(data)
        uploads.append(folder / name)
    # As Live mode's Record makes it: streamed, so no duration, no frame count, no cues.
    rgb = [np.ascontiguousarray(frame[:, :, ::-1]) for frame in frames]
    uploads.append(write_recording(folder / "recording.webm", rgb))
    # As phones, DVDs and DV cameras write them: HDR, interlaced, non-square pixels.
    uploads.append(write_hdr_video(folder / "iphone_hlg.mov", rgb[:30], "hlg", rotation=90))
    uploads.append(write_hdr_video(folder / "android_pq.mp4", rgb[:30], "pq"))
    dvd = [cv2.resize(frame, (720, 576)) for frame in rgb[:50]]
    uploads.append(write_interlaced_video(folder / "dvd_interlaced.mpg", dvd))
    uploads.append(
        write_tagged_video(folder / "dvd_16x9.mp4", dvd[:25], pixel_aspect=Fraction(64, 45))
    )
    # As editors and recorders write them: mirrored, cut without re-encoding, studio sound.
    uploads.append(
        write_tagged_video(folder / "mirrored.mov", rgb[:25], rotation=90, mirrored=True)
    )
    whole = write_tagged_video(
        folder / "whole.mp4", rgb[:50], keyframe_every=50, audio=Audio(samples=beeps([1.2], 2.0))
    )
    uploads.append(cut_without_reencoding(whole, folder / "lossless_cut.mp4", 0.8))
    studio = Audio("pcm_s24le", samples=beeps([0.5], 1.0, 192_000), rate=192_000)
    uploads.append(write_tagged_video(folder / "sound_192k.mov", rgb[:25], audio=studio))
    for name, data in {
        "song_with_cover.mp4": audio_only_mp4(cover_art=True),
        "song.m4a": audio_only_mp4(muxer="ipod"),
    }.items():
        (folder / name).write_bytes(data)
        uploads.append(folder / name)
    return uploads


def picture_bytes(name: str, size: tuple[int, int]) -> bytes:
    image = cv2.resize(source_frames(1)[0], size, interpolation=cv2.INTER_AREA)
    return cv2.imencode(Path(name).suffix, image)[1].tobytes()


def job_outcome(client: httpx.Client, job_id: str) -> tuple[str, bool]:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}", params={"wait": 10}).json()
        if job["state"] in ("succeeded", "cancelled"):
            return job["state"], True
        if job["state"] == "failed":
            error = job.get("error") or ""
            return f"failed: {error}", not any(fault in error for fault in SERVICE_FAULTS)
    return f"not ended within {JOB_TIMEOUT_S:.0f} s", False


def report(name: str, route: str, response: httpx.Response, follow: Callable | None) -> bool:
    """Print one answer; whether it is acceptable."""
    if response.status_code >= 500:
        print(f"BAD  {name:20s} {route:17s} {response.status_code} {response.text[:120]}")
        return False
    if response.status_code >= 400:
        body = response.json()
        print(
            f"ok   {name:20s} {route:17s} {response.status_code} {body['code']}: {body['detail']}"
        )
        return True
    outcome, fine = follow(response) if follow else (str(response.status_code), True)
    print(f"{'ok  ' if fine else 'BAD '} {name:20s} {route:17s} {outcome}")
    return fine


def probe(url: str, style: str | None) -> bool:
    fine = True
    with httpx.Client(base_url=url, timeout=120) as client, tempfile.TemporaryDirectory() as tmp:
        style = style or client.get("/models").json()["styles"][0]["name"]
        for path in build_uploads(Path(tmp)):
            data = path.read_bytes()
            answer = client.post("/classify", files={"file": (path.name, data)})
            fine &= report(path.name, "/classify", answer, None)
            answer = client.post(
                "/stylize", files={"file": (path.name, data)}, data={"style": style}
            )
            fine &= report(
                path.name, "/stylize", answer, lambda r: job_outcome(client, r.json()["job_id"])
            )
        for name, size in PICTURES:
            files = {"image": (name, picture_bytes(name, size))}
            answer = client.post("/stylize/preview", files=files, data={"style": style})
            fine &= report(name, "/stylize/preview", answer, None)
    return fine


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running service; without it, one is started here")
    parser.add_argument("--style", help="the named style for the jobs (default: the first listed)")
    args = parser.parse_args()
    with nullcontext() if args.url else running_stack(workers=1) as stack:
        fine = probe(args.url or stack.url, args.style)
        if stack is not None and "exited prematurely" in stack.worker_log_text():
            print("BAD  a worker process died (see the worker log)")
            fine = False
    print("every answer was a success or a clear refusal" if fine else "some answers were not")
    return 0 if fine else 1


if __name__ == "__main__":
    sys.exit(main())
