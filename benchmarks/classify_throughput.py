"""/classify throughput of two model folders' defaults, side by side on this machine.

    python benchmarks/classify_throughput.py BEFORE_MODELS_DIR AFTER_MODELS_DIR [--turns 2]
    python benchmarks/classify_throughput.py exported_models exported_models \
        --after-env ACTIONSTYLE_OPENVINO_CLASSIFIERS=i3d_effnet_temporal   # one setting's effect

Each folder's API is started in turn (no workers), with its side's extra settings, the turns
alternating A, B, A, B so that the machine's drift falls on both; each turn classifies one clip
with every model, then posts a held-out clip of each of the nine actions in turn
(bench.action_clips) at concurrency 1, 4 and 16. Prints req/s per turn, the API's resident memory
after it (every classifier loaded and used, then the concurrent runs), and the ratio B / A of the
turns' means.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR.parent), str(BENCH_DIR), str(BENCH_DIR.parent / "scripts")]

import httpx  # noqa: E402
from bench import UCF_CLIP, _throughput, action_clips  # noqa: E402
from stack import rss_mib, running_stack  # noqa: E402

from service.contract.manifest import load_manifest  # noqa: E402

CONCURRENCY = (1, 4, 16)


def one_turn(
    models: Path, threads: int, settings: dict[str, str]
) -> tuple[dict[int, float], float]:
    """Requests a second at each concurrency, and the API's resident MiB after them."""
    env = {"ACTIONSTYLE_ORT_INTRA_OP_THREADS": str(threads), "ACTIONSTYLE_LOG_LEVEL": "WARNING"}
    clips = len(action_clips())
    with running_stack(workers=0, models_dir=models, extra_env=env | settings) as stack:
        with httpx.Client(base_url=stack.url, timeout=300) as client:
            for entry in load_manifest(models).classifiers:  # every classifier used, as bench.py
                files = {"file": (UCF_CLIP.name, UCF_CLIP.read_bytes())}
                client.post("/classify", params={"model": entry.name}, files=files)
        asyncio.run(_throughput(stack.url, 1, clips))  # warm-up: one-off costs of each path
        rates = {
            c: asyncio.run(_throughput(stack.url, c, math.ceil(max(18, 2 * c) / clips) * clips))
            for c in CONCURRENCY
        }
        return rates, rss_mib(stack.api_pid)


def _settings(pairs: list[str]) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in pairs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--turns", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    for side in ("before", "after"):
        parser.add_argument(
            f"--{side}-env",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help=f"a setting for the {side} side's API (repeatable)",
        )
    args = parser.parse_args(argv)
    print(f"# /classify throughput, default model, load average {os.getloadavg()}")
    results: dict[str, list[dict[int, float]]] = {"before": [], "after": []}
    for turn in range(args.turns):
        for side in ("before", "after"):
            settings = _settings(getattr(args, f"{side}_env"))
            rates, rss = one_turn(getattr(args, side), args.threads, settings)
            results[side].append(rates)
            shown = ", ".join(f"c={c}: {r:.2f}" for c, r in rates.items())
            label = " ".join([str(getattr(args, side)), *(f"{k}={v}" for k, v in settings.items())])
            print(
                f"turn {turn + 1} {side:<7} ({label}): {shown} req/s, API {rss:.0f} MiB", flush=True
            )
    for c in CONCURRENCY:
        before = statistics.mean(r[c] for r in results["before"])
        after = statistics.mean(r[c] for r in results["after"])
        print(f"c={c}: {before:.2f} -> {after:.2f} req/s, {after / before:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
