"""Load on loopback: 200 concurrent /classify requests, then 50 stylize jobs at once on 2 workers.

Starts its own Redis, two Celery workers and the API (scripts/stack.py), prints what it measured
and exits 1 if any request failed or any job was lost, duplicated or not finished in time. Every
wait is bounded; the whole run stops by itself.

    python scripts/load.py [--requests 200] [--jobs 50] [--style vangogh] [--time-limit 900]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stack import REPO_ROOT, running_stack  # noqa: E402

SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
CLASSIFY_CLIP = SHARED_DATA / "ucf101" / "YoYo" / "v_YoYo_g01_c01.avi"
STYLIZE_SOURCE = SHARED_DATA / "clips" / "v_ApplyEyeMakeup_g01_c01.avi"
REQUEST_TIMEOUT_S = 600.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def classify_burst(url: str, count: int, clip: bytes) -> tuple[list[float], list[str], float]:
    """`count` requests sent at once; returns latencies (s), errors, and the wall time."""
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT_S, limits=limits) as client:

        async def one() -> tuple[float, str | None]:
            started = time.perf_counter()
            try:
                response = await client.post(
                    "/classify", files={"file": (CLASSIFY_CLIP.name, clip, "video/x-msvideo")}
                )
            except httpx.HTTPError as exc:
                return time.perf_counter() - started, f"{type(exc).__name__}: {exc}"
            if response.status_code != 200:
                return time.perf_counter() - started, f"{response.status_code} {response.text}"
            return time.perf_counter() - started, None

        started = time.perf_counter()
        results = await asyncio.gather(*(one() for _ in range(count)))
        wall = time.perf_counter() - started
    return [r[0] for r in results], [r[1] for r in results if r[1]], wall


def short_clip(target: Path, frames: int = 25, size: tuple[int, int] = (160, 120)) -> Path:
    """One second of a real clip at 160x120 (MJPEG AVI): a job that takes a second or two."""
    capture = cv2.VideoCapture(str(STYLIZE_SOURCE))
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, size)
    try:
        for _ in range(frames):
            ok, frame = capture.read()
            if not ok:
                break
            writer.write(cv2.resize(frame, size, interpolation=cv2.INTER_AREA))
    finally:
        capture.release()
        writer.release()
    return target


def stylize_burst(url: str, count: int, style: str, clip: Path, deadline_s: float) -> dict:
    """Queue `count` jobs at once, wait for all of them, fetch every result."""
    with httpx.Client(base_url=url, timeout=60) as client:
        started = time.perf_counter()
        job_ids = []
        for _ in range(count):
            with clip.open("rb") as video:
                response = client.post(
                    "/stylize", files={"file": (clip.name, video)}, data={"style": style}
                )
            response.raise_for_status()
            job_ids.append(response.json()["job_id"])
        queued = time.perf_counter() - started
        pending, states = set(job_ids), {}
        deadline = time.monotonic() + deadline_s
        furthest = 0  # the longest line a queued job reported standing in
        while pending and time.monotonic() < deadline:
            for job_id in list(pending):
                status = client.get(f"/jobs/{job_id}").json()
                furthest = max(furthest, status.get("queue_position") or 0)
                if status["state"] in {"succeeded", "failed", "cancelled"}:
                    states[job_id] = status
                    pending.discard(job_id)
            time.sleep(0.5)
        wall = time.perf_counter() - started
        results = {}
        for job_id, status in states.items():
            if status["state"] == "succeeded":
                response = client.get(f"/jobs/{job_id}/result")
                results[job_id] = response.status_code == 200 and response.content[4:8] == b"ftyp"
        metrics = client.get("/metrics").text
    workers = re.search(r"^actionstyle_workers (\S+)$", metrics, re.MULTILINE)
    return {
        "furthest_in_line": furthest,
        "workers_seen": float(workers.group(1)) if workers else None,
        "job_ids": job_ids,
        "states": states,
        "pending": pending,
        "results": results,
        "queued_s": queued,
        "wall_s": wall,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--style", default="vangogh")
    parser.add_argument("--time-limit", type=float, default=900.0, help="seconds for each part")
    args = parser.parse_args(argv)

    failures = []
    with running_stack(workers=args.workers) as stack, tempfile.TemporaryDirectory() as folder:
        print(f"stack up: API {stack.url}, {args.workers} workers")
        clip = CLASSIFY_CLIP.read_bytes()
        latencies, errors, wall = asyncio.run(
            asyncio.wait_for(classify_burst(stack.url, args.requests, clip), args.time_limit)
        )
        print(
            f"/classify x{args.requests} at once ({CLASSIFY_CLIP.name}, {len(clip) / 1e6:.2f} MB): "
            f"{len(errors)} errors; p50 {statistics.median(latencies):.2f} s, "
            f"p95 {percentile(latencies, 95):.2f} s, max {max(latencies):.2f} s; "
            f"wall {wall:.1f} s, {args.requests / wall:.2f} requests/s"
        )
        for error in collections.Counter(errors).most_common(5):
            print("  error:", error)
        if errors:
            failures.append(f"{len(errors)} /classify errors")

        short = short_clip(Path(folder) / "short.avi")
        run = stylize_burst(stack.url, args.jobs, args.style, short, args.time_limit)
        log = stack.worker_log_text()
        started = collections.Counter(re.findall(r"job ([0-9a-f]{32}) started", log))
        succeeded = [j for j, s in run["states"].items() if s["state"] == "succeeded"]
        results = sorted(stack.storage_dir.glob("*/result.mp4"))
        per_worker = collections.Counter(
            m for m in re.findall(r"job [0-9a-f]{32} started on (\S+)", log)
        )
        print(
            f"/stylize x{args.jobs} at once ({args.style}, 25 frames at 160x120) on "
            f"{args.workers} workers: queued in {run['queued_s']:.1f} s, all done in "
            f"{run['wall_s']:.1f} s; {len(set(run['job_ids']))} distinct ids, "
            f"{len(succeeded)} succeeded, {len(run['pending'])} unfinished, "
            f"{sum(run['results'].values())} results fetched, {len(results)} result files; "
            f"started once: {sum(1 for j in run['job_ids'] if started[j] == 1)}, "
            f"more than once: {sum(1 for j in run['job_ids'] if started[j] > 1)}; "
            f"per worker: {dict(per_worker)}; furthest place in the line seen: "
            f"{run['furthest_in_line']}; workers /metrics counts: {run['workers_seen']}"
        )
        if run["workers_seen"] != args.workers:
            failures.append(f"/metrics counts {run['workers_seen']} workers, not {args.workers}")
        if not (
            len(set(run["job_ids"]))
            == len(succeeded)
            == sum(run["results"].values())
            == len(results)
            == args.jobs
            and all(started[j] == 1 for j in run["job_ids"])
        ):
            failures.append("stylize jobs lost, failed or duplicated")
            for job_id, status in run["states"].items():
                if status["state"] != "succeeded":
                    print("  ", job_id, status["state"], status.get("error"))
    print("FAIL: " + "; ".join(failures) if failures else "OK")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
