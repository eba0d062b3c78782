"""A stylize job's speed at another commit beside this tree's, alternating in one run.

    python benchmarks/job_before_after.py --before 1ea7982 [--rounds 7] [--long-s 60]

Checks the commit out in a temporary git worktree, then times the job's pipeline
(`job_stages` of benchmarks/stylize_speed.py, on the workers' runtime) in a fresh process per
turn, the two trees taking turns, on the 7.48 s UCF101 clip and a 320x240 loop of it. Prints
every turn's job time / clip duration and, per clip, the median of the ratios after / before
paired by round: on a shared machine whose speed drifts, that is the figure drift weighs on least.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path[:0] = [str(REPO_ROOT), str(BENCH_DIR)]

from bench import UCF_CLIP, looped_video  # noqa: E402

# Run in a fresh interpreter with one tree first on the path: that tree's pipeline, its models.
TURN = """
import json, sys
from pathlib import Path
tree, clip = Path(sys.argv[1]), Path(sys.argv[2])
sys.path[:0] = [str(tree), str(tree / "benchmarks")]
from stylize_speed import job_stages
from service.contract.manifest import load_manifest
from service.settings import Settings
models = tree / "exported_models"
first = models / load_manifest(models).styles[0].file
print(json.dumps(job_stages(clip, first, 2, Settings().style_runtime)))
"""


def turn(tree: Path, clip: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", TURN, str(tree), str(clip)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", required=True, help="the commit to compare with")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--long-s", type=float, default=60.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        before = Path(folder) / "before"
        subprocess.run(
            ["git", "-C", str(REPO_ROOT), "worktree", "add", "--detach", "-q", str(before)]
            + [args.before],
            check=True,
        )
        try:
            loop = looped_video(Path(folder) / "loop.mp4", args.long_s, size=(320, 240))
            trees = {"before": before, "after": REPO_ROOT}
            for name, clip in ((UCF_CLIP.name, UCF_CLIP), (f"{args.long_s:.0f} s loop", loop)):
                ratios: dict[str, list[float]] = {"before": [], "after": []}
                for round_ in range(args.rounds):
                    for side, tree in trees.items():
                        row = turn(tree, clip)
                        ratios[side].append(row["ratio"])
                        print(f"{name} round {round_} {side}: job / clip {row['ratio']:.3f}")
                paired = [a / b for a, b in zip(ratios["after"], ratios["before"], strict=True)]
                print(
                    f"{name}: before {min(ratios['before']):.3f}-{max(ratios['before']):.3f} "
                    f"(median {statistics.median(ratios['before']):.3f}), "
                    f"after {min(ratios['after']):.3f}-{max(ratios['after']):.3f} "
                    f"(median {statistics.median(ratios['after']):.3f}); after / before "
                    f"{min(paired):.2f}-{max(paired):.2f}, median {statistics.median(paired):.2f}"
                )
        finally:
            subprocess.run(
                ["git", "-C", str(REPO_ROOT), "worktree", "remove", "--force", str(before)],
                check=False,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
