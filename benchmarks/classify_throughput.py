"""/classify throughput of two model folders' defaults, side by side on this machine.

    python benchmarks/classify_throughput.py BEFORE_MODELS_DIR AFTER_MODELS_DIR [--turns 2]

Each folder's API is started in turn (no workers), the turns alternating A, B, A, B so that the
machine's drift falls on both; each turn posts a held-out clip of each of the nine actions in
turn (bench.action_clips) at concurrency 1, 4 and 16. Prints req/s per turn and the ratio B / A
of the turns' means.
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

from bench import _throughput, action_clips  # noqa: E402
from stack import running_stack  # noqa: E402

CONCURRENCY = (1, 4, 16)


def one_turn(models: Path, threads: int) -> dict[int, float]:
    env = {"ACTIONSTYLE_ORT_INTRA_OP_THREADS": str(threads), "ACTIONSTYLE_LOG_LEVEL": "WARNING"}
    clips = len(action_clips())
    with running_stack(workers=0, models_dir=models, extra_env=env) as stack:
        asyncio.run(_throughput(stack.url, 1, clips))  # warm-up: one-off costs of each path
        return {
            c: asyncio.run(_throughput(stack.url, c, math.ceil(max(18, 2 * c) / clips) * clips))
            for c in CONCURRENCY
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--turns", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    print(f"# /classify throughput, default model, load average {os.getloadavg()}")
    results: dict[str, list[dict[int, float]]] = {"before": [], "after": []}
    for turn in range(args.turns):
        for side in ("before", "after"):
            rates = one_turn(getattr(args, side), args.threads)
            results[side].append(rates)
            shown = ", ".join(f"c={c}: {r:.2f}" for c, r in rates.items())
            print(f"turn {turn + 1} {side:<7} ({getattr(args, side)}): {shown} req/s", flush=True)
    for c in CONCURRENCY:
        before = statistics.mean(r[c] for r in results["before"])
        after = statistics.mean(r[c] for r in results["after"])
        print(f"c={c}: {before:.2f} -> {after:.2f} req/s, {after / before:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
