"""Train the four CycleGAN teachers on one GPU, then distil a student from each.

Runs from the repo root on a machine with a CUDA GPU, over a bundle made beforehand with
`python -m training styles bundle --dest .device/bundle` (no UCF101 clips needed there). Each
style trains in its own process, all sharing the GPU, and every stage is scheduled by time, so the
whole script ends by `--deadline-s` whatever the GPU's speed. What comes back is small: per style a
tar with the student run, the teacher's training record and last sample grid, and the teacher's
held-out outputs as JPEGs (for KID and the figure here); plus the logs.

    python scripts/gpu_styles.py --out OUT --cyclegan-s 330 --distill-s 120 --deadline-s 540

Back here, `python scripts/gpu_styles.py --unpack OUT` puts the runs under runs/gpu/ and the
teachers' held-out outputs into the style cache; then `python -m training distill export --style
vangogh --run-dir runs/gpu/students/vangogh` ships a student as usual.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from training.styles.bundle import EFFNET_WEIGHTS  # noqa: E402
from training.styles.data import STYLES  # noqa: E402
from training.styles.distillation import teacher_cache_file  # noqa: E402

RUNS = Path("runs/gpu")
HELDOUT_DIR = "teacher_heldout"


def _teacher(style: str) -> str:
    """The CycleGAN checkpoint a style's student learns from."""
    return str(RUNS / "cyclegan" / style / "last.pt")


def _spawn(args: list[str], log: Path, env: dict) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "training", *args], stdout=out, stderr=subprocess.STDOUT, env=env
        )


def _wait_all(processes: dict[str, subprocess.Popen]) -> dict[str, int]:
    return {name: p.wait() for name, p in processes.items()}


def _cyclegan_args(opts: argparse.Namespace, style: str, budget_s: float, bf16: bool) -> list[str]:
    args = [
        "cyclegan", "train", "--style", style, "--data", str(opts.bundle / "data"),
        "--cache-dir", str(opts.cache_dir), "--run-dir", str(RUNS / "cyclegan" / style),
        "--ngf", str(opts.ngf), "--n-blocks", str(opts.n_blocks), "--size", str(opts.size),
        "--batch-size", str(opts.batch_size), "--device", opts.device,
        "--time-budget-s", f"{budget_s:.0f}", "--epoch-iterations", str(opts.epoch_iterations),
        "--threads", str(opts.threads),
    ]  # fmt: skip
    return [*args, "--bf16"] if bf16 else args


def _distill_args(opts: argparse.Namespace, style: str, budget_s: float) -> list[str]:
    return [
        "distill", "train", "--style", style, "--data", str(opts.bundle / "data"),
        "--cache-dir", str(opts.cache_dir), "--run-dir", str(RUNS / "students" / style),
        "--teacher-checkpoint", _teacher(style),
        "--device", opts.device, "--time-budget-s", f"{budget_s:.0f}",
        "--batch-size", str(opts.distill_batch), "--threads", str(opts.threads),
    ]  # fmt: skip


def train(opts: argparse.Namespace) -> dict:
    started = time.monotonic()

    def left() -> float:
        return opts.deadline_s - (time.monotonic() - started)

    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "TQDM_MININTERVAL": "10",  # short logs: a progress line every 10 s
        "EFFNET_LITE0_WEIGHTS": str(opts.bundle / EFFNET_WEIGHTS),
    }
    logs = RUNS / "logs"  # carried back as one tar: OUT may hold only a few files
    summary: dict = {"styles": opts.styles}
    unbundle = ["styles", "unbundle", "--bundle", str(opts.bundle), "--cache-dir"]
    rc = _spawn([*unbundle, str(opts.cache_dir)], logs / "unbundle.log", env).wait()
    if rc:
        raise SystemExit(f"unbundle failed ({rc}); see {logs / 'unbundle.log'}")

    # Teachers: all styles at once on the one GPU. A bf16 failure falls back to float32 once.
    budget = min(opts.cyclegan_s, left() - opts.distill_s - opts.reserve_s)
    t0 = time.monotonic()
    runs = {
        s: _spawn(_cyclegan_args(opts, s, budget, opts.bf16), logs / f"cyclegan_{s}.log", env)
        for s in opts.styles
    }
    codes = _wait_all(runs)
    failed = [s for s, code in codes.items() if code]
    if failed and opts.bf16 and time.monotonic() - t0 < 120:
        budget = min(opts.cyclegan_s, left() - opts.distill_s - opts.reserve_s)
        runs = {
            s: _spawn(_cyclegan_args(opts, s, budget, False), logs / f"cyclegan_{s}_fp32.log", env)
            for s in failed
        }
        codes.update(_wait_all(runs))
    summary["cyclegan_rc"] = codes

    # Students, from whichever teachers finished.
    ready = [s for s in opts.styles if Path(_teacher(s)).exists()]
    budget = max(10.0, min(opts.distill_s, left() - opts.reserve_s))
    runs = {
        s: _spawn(_distill_args(opts, s, budget), logs / f"distill_{s}.log", env) for s in ready
    }
    summary["distill_rc"] = _wait_all(runs)
    for style in ready:
        summary[style] = pack_style(opts, style)
    with tarfile.open(opts.out / "logs.tar", "w") as tar:
        tar.add(logs, arcname=str(logs))
    summary["seconds"] = round(time.monotonic() - started, 1)
    (opts.out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def pack_style(opts: argparse.Namespace, style: str) -> dict:
    """One tar per style: student run, teacher record + last grid, teacher's held-out outputs."""
    from training.styles.bundle import write_heldout_outputs

    cyclegan, student = RUNS / "cyclegan" / style, RUNS / "students" / style
    metrics = {}
    for name, run in (("cyclegan", cyclegan), ("student", student)):
        path = run / "metrics.json"
        metrics[name] = json.loads(path.read_text()) if path.exists() else None
    cache = opts.cache_dir / teacher_cache_file(style, teacher_checkpoint=_teacher(style))
    if cache.exists():
        write_heldout_outputs(cache, student / HELDOUT_DIR)
    grids = sorted(cyclegan.glob("samples_epoch*.png"))
    with tarfile.open(opts.out / f"{style}.tar", "w") as tar:
        for path in [*cyclegan.glob("*.json"), *grids[-2:], *student.glob("*.json")]:
            tar.add(path, arcname=str(path))
        for extra in (student / "last.pt", student / HELDOUT_DIR):
            if extra.exists():
                tar.add(extra, arcname=str(extra))
    return metrics


def unpack(out: Path, cache_dir: Path) -> list[str]:
    """Here: runs under runs/gpu/, and an evaluation-only teacher cache per style."""
    from training.styles.bundle import read_heldout_outputs

    unpacked = []
    for tar_path in sorted(out.glob("*.tar")):
        with tarfile.open(tar_path) as tar:
            tar.extractall(REPO, filter="data")
        style = tar_path.stem
        heldout = REPO / RUNS / "students" / style / HELDOUT_DIR
        if style in STYLES and heldout.exists():
            cache = cache_dir / teacher_cache_file(style, teacher_checkpoint=_teacher(style))
            read_heldout_outputs(heldout, cache)
            unpacked.append(style)
    return unpacked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "runs/gpu_out")))
    parser.add_argument("--unpack", type=Path, help="here: unpack a finished OUT folder")
    parser.add_argument("--bundle", type=Path, default=Path(".device/bundle"))
    parser.add_argument("--cache-dir", type=Path, default=Path(".cache/styles"))
    parser.add_argument("--styles", nargs="+", default=list(STYLES))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--ngf", type=int, default=64)  # the published size
    parser.add_argument("--n-blocks", type=int, default=9)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--epoch-iterations", type=int, default=200)
    parser.add_argument("--distill-batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=4, help="CPU threads per process")
    parser.add_argument("--cyclegan-s", type=float, default=330)
    parser.add_argument("--distill-s", type=float, default=120)
    parser.add_argument("--reserve-s", type=float, default=45, help="start-up, teacher, packing")
    parser.add_argument("--deadline-s", type=float, default=540)
    opts = parser.parse_args()
    if opts.unpack:
        print(json.dumps({"unpacked": unpack(opts.unpack, opts.cache_dir)}))
        return
    opts.out.mkdir(parents=True, exist_ok=True)
    print(json.dumps(train(opts), indent=2))


if __name__ == "__main__":
    main()
