"""Custom classifiers (#18) measured through the whole service: accuracy, job time, API memory.

    python benchmarks/teach.py [--classes Archery BasketballDunk HorseRace PlayingViolin]
                               [--per-class 5] [--test-stride 1] [--json out.json]

1. Teach: POST /classifiers with `--per-class` clips of each class, each clip from a different
   group (the lowest groups; c01 of each), to a real worker; the job's time is its worker's
   (started -> finished: decode + features + cross-validation + training + storing).
2. Accuracy: POST /classify?model= on every clip of the *other* groups of those classes (never
   the same actor and background as a training clip): top-1, per class, and the share the
   open-set rule calls confident.
3. Unseen actions: the same on clips of the classes not taught (every 8th clip) and on the
   single clips in ../shared/data/clips (HMDB51, Kinetics, a cartoon): the share flagged as not
   confident.
4. Memory: the API's resident memory with 10 custom classifiers stored and each used once
   (copies of the taught one under 10 names; budget 400 MB).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import httpx

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "scripts")]

from stack import rss_mib, running_stack  # noqa: E402

DATA = REPO_ROOT.parent / "shared" / "data" / "ucf101"
DEFAULT_CLASSES = ["Archery", "BasketballDunk", "HorseRace", "PlayingViolin"]
NAME = "bench-taught"
MEMORY_BUDGET_MB = 400


def _group(path: Path) -> str:
    return path.stem.split("_g")[1][:2]


def split(classes: list[str], per_class: int) -> tuple[list[tuple[str, Path]], list]:
    """Training clips (one per group, the lowest groups) and every clip of the other groups."""
    train, test = [], []
    for name in classes:
        clips = sorted((DATA / name).glob("v_*"))
        groups = sorted({_group(p) for p in clips})[:per_class]
        train += [(name, next(p for p in clips if _group(p) == g)) for g in groups]
        test += [(name, p) for p in clips if _group(p) not in groups]
    return train, test


def teach(client: httpx.Client, train: list[tuple[str, Path]]) -> dict:
    files = [("files", (p.name, p.read_bytes())) for _, p in train]
    data = {"name": NAME, "labels": [label for label, _ in train]}
    posted = time.monotonic()
    created = client.post("/classifiers", files=files, data=data)
    created.raise_for_status()
    job_url = created.json()["status_url"]
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        status = client.get(job_url).json()
        if status["state"] in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.2)
    if status["state"] != "succeeded":
        raise RuntimeError(f"the teach job ended {status['state']}: {status['error']}")
    started = datetime.fromisoformat(status["started_at"])
    finished = datetime.fromisoformat(status["finished_at"])
    entry = client.get(f"/classifiers/{NAME}").json()
    return {
        "job_s": round((finished - started).total_seconds(), 2),
        "post_to_done_s": round(time.monotonic() - posted, 2),
        "cross_validated_top1": entry["metrics"]["cross_validated_top1"],
        "cv_folds": entry["metrics"]["cv_folds"],
        "open_set": entry["open_set"],
    }


def evaluate(client: httpx.Client, test: list[tuple[str, Path]], model: str) -> dict:
    right, confident, per_class = 0, 0, Counter()
    for label, path in test:
        with path.open("rb") as clip:
            answer = client.post(f"/classify?model={model}", files={"file": (path.name, clip)})
        answer.raise_for_status()
        body = answer.json()
        hit = body["predictions"][0]["label"] == label
        right += hit
        per_class[label] += hit
        confident += body["confident"]
    totals = Counter(label for label, _ in test)
    return {
        "test_clips": len(test),
        "top1": round(right / len(test), 4),
        "per_class": {k: round(per_class[k] / totals[k], 4) for k in sorted(totals)},
        "confident": round(confident / len(test), 4),
    }


def unseen(client: httpx.Client, classes: list[str], model: str) -> dict:
    others = sorted(p.name for p in DATA.iterdir() if p.is_dir() and p.name not in classes)
    clips = [p for name in others for p in sorted((DATA / name).glob("v_*"))[::8]]
    clips += sorted((DATA.parent / "clips").glob("*.*"))
    flagged = 0
    for path in clips:
        with path.open("rb") as clip:
            answer = client.post(f"/classify?model={model}", files={"file": (path.name, clip)})
        answer.raise_for_status()
        flagged += not answer.json()["confident"]
    return {"classes": others, "clips": len(clips), "flagged": round(flagged / len(clips), 4)}


def memory(client: httpx.Client, stack, clip: Path, copies: int = 10) -> dict:
    folder = stack.storage_dir / "classifiers" / "anonymous"
    taught = (folder / f"{NAME}.npz").read_bytes()
    before = rss_mib(stack.api_pid)
    names = [f"{NAME}-{i}" for i in range(copies - 1)] + [NAME]
    for name in names[:-1]:
        (folder / f"{name}.npz").write_bytes(taught)
    for name in names:
        with clip.open("rb") as video:
            client.post(f"/classify?model={name}", files={"file": (clip.name, video)})
    listed = [c for c in client.get("/models").json()["classifiers"] if c["family"] == "custom"]
    return {
        "custom_classifiers": len(listed),
        "api_rss_mb_after_the_test_clips": round(before, 1),
        "api_rss_mb_with_10": round(rss_mib(stack.api_pid), 1),
        "api_peak_mb": round(rss_mib(stack.api_pid, peak=True), 1),
        "budget_mb": MEMORY_BUDGET_MB,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--classes", nargs="+", default=DEFAULT_CLASSES)
    parser.add_argument("--per-class", type=int, default=5)
    parser.add_argument("--test-stride", type=int, default=1, help="every Nth test clip")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    train, test = split(args.classes, args.per_class)
    test = test[:: args.test_stride]
    with running_stack(workers=1) as stack, httpx.Client(base_url=stack.url, timeout=120) as api:
        at_start = rss_mib(stack.api_pid)  # every shipped model loaded, no encoder yet
        report = {
            "classes": args.classes,
            "train_clips": len(train),
            "train_groups": sorted({f"{label}/g{_group(p)}" for label, p in train}),
            "load_average": os.getloadavg()[0],
            "teach": teach(api, train),
        }
        report["accuracy_other_groups"] = evaluate(api, test, NAME)
        report["unseen_actions"] = unseen(api, args.classes, NAME)
        report["memory"] = {"api_rss_mb_at_start": round(at_start, 1)}
        report["memory"] |= memory(api, stack, test[0][1])
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
