"""CLI commands for style work, registered into `python -m training` by `add_style_commands`.

python -m training cyclegan train --style vangogh --run-dir runs/cyclegan/vangogh --size 128
python -m training cyclegan import latest_net_G.pth --style vangogh_cyclegan
python -m training distill train --style vangogh --teacher-vector painting:00400.jpg
python -m training distill export --style vangogh --run-dir runs/styles/vangogh
python -m training styles arbitrary        # copy the Magenta networks + manifest entry
python -m training styles evaluate         # KID table of all exported styles
python -m training styles figure           # docs/styles.png
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from training.options import add_option_arguments, options_from_args, options_from_json
from training.styles.bundle import read_bundle, write_bundle
from training.styles.distillation import DistillOptions, average_students, run_distillation
from training.styles.export import export_arbitrary
from training.styles.heldout import check_heldout
from training.styles.importer import import_published_generator
from training.styles.pipeline import (
    compare_on_training_frames,
    evaluate_styles,
    export_student,
    styles_figure,
)
from training.styles.train_cyclegan import CycleGANOptions, run_cyclegan

REPO_ROOT = Path(__file__).resolve().parents[2]
# Given by `_common` with this checkout's paths, not by the options' own fields.
COMMON = {"data", "cache_dir", "threads", "limit", "run_dir"}
CYCLEGAN_HELP = {
    "time_limit_s": "pause after this long in this call (resumable)",
    "time_budget_s": "schedule the whole run by training time",
    "device": "cpu, cuda, cuda:1, ...",
    "bf16": "bfloat16 autocast on CUDA",
}
DISTILL_HELP = {
    **CYCLEGAN_HELP,
    "teacher_vector": "mean, extrapolate:A, painting:NAME",
    "teacher_checkpoint": "a CycleGAN run's last.pt (or a published .pth) as the teacher",
    "teacher_onnx": "a style ONNX (a shipped student) as the teacher: re-distil it",
    "student": "small, cpu (the layout built for onnxruntime on CPU) or tiny",
    "w_pixel": "L1 to the teacher's output",
    "w_adversarial": "PatchGAN critic vs the paintings",
    "perceptual_target": "teacher (distil its output) or content (keep the input's scene)",
    "init_from": "a student last.pt, or a shipped style ONNX, to fine-tune from",
    "keep_snapshots": "keep every checkpoint in RUN_DIR/snapshots/, to compare them afterwards",
}
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data"
DEFAULT_OUT = REPO_ROOT / "exported_models"
DEFAULT_CACHE = REPO_ROOT / ".cache" / "styles"


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared data root")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--limit", type=int, default=0, help="smoke runs: images/clips per set")


def _add_train(
    sub: argparse._SubParsersAction,
    help_text: str,
    options: type,
    helps: dict[str, str],
    run_dir: str,
    handler: Callable[[argparse.Namespace], dict],
) -> None:
    """A resumable `train` subcommand: the `options` fields as flags, a run folder, `_common`."""
    train = sub.add_parser("train", help=help_text)
    add_option_arguments(train, options, skip=COMMON, helps=helps)
    train.add_argument("--run-dir", type=Path, help=f"default: {run_dir}")
    _common(train)
    train.set_defaults(handler=handler)


def _add_cyclegan(commands: argparse._SubParsersAction) -> None:
    cyclegan = commands.add_parser("cyclegan", help="train or import CycleGAN generators")
    sub = cyclegan.add_subparsers(dest="style_command", required=True)
    train_help = "unpaired training (resumes from RUN_DIR/last.pt)"
    _add_train(
        sub, train_help, CycleGANOptions, CYCLEGAN_HELP, "runs/cyclegan/<style>", _cyclegan_train
    )

    imp = sub.add_parser("import", help="published latest_net_G.pth -> ONNX + manifest entry")
    imp.add_argument("checkpoint", type=Path)
    imp.add_argument("--style", required=True, help="name of the style in the manifest")
    imp.add_argument("--out", type=Path, default=DEFAULT_OUT)
    imp.add_argument("--skip-fps", action="store_true", help="do not time it at 320x240")
    imp.set_defaults(handler=_cyclegan_import)


def _add_distill(commands: argparse._SubParsersAction) -> None:
    distill = commands.add_parser("distill", help="train and export fast student stylizers")
    sub = distill.add_subparsers(dest="style_command", required=True)
    train_help = "distil the teacher into a student (resumes)"
    _add_train(sub, train_help, DistillOptions, DISTILL_HELP, "runs/styles/<style>", _distill_train)

    export = sub.add_parser("export", help="student ONNX + metrics + manifest entry")
    export.add_argument("--style", required=True)
    export.add_argument("--run-dir", type=Path)
    export.add_argument(
        "--checkpoint", type=Path, help="one of the run's snapshots (default: RUN_DIR/last.pt)"
    )
    export.add_argument("--out", type=Path, default=DEFAULT_OUT)
    _common(export)
    export.set_defaults(handler=_distill_export)

    average = sub.add_parser(
        "average", help="average the weights of runs fine-tuned from one student (seeds)"
    )
    average.add_argument("runs", nargs="+", type=Path, help="run folders (their last.pt)")
    average.add_argument("--run-dir", type=Path, required=True, help="where the average goes")
    average.set_defaults(handler=_distill_average)


def _add_styles(commands: argparse._SubParsersAction) -> None:
    styles = commands.add_parser("styles", help="arbitrary-style export, KID evaluation, figure")
    sub = styles.add_subparsers(dest="style_command", required=True)
    arbitrary = sub.add_parser("arbitrary", help="copy the Magenta networks into exported_models")
    arbitrary.add_argument("--out", type=Path, default=DEFAULT_OUT)
    arbitrary.set_defaults(handler=lambda a: _arbitrary(a))
    evaluate = sub.add_parser("evaluate", help="KID of exported styles vs each painter's set")
    evaluate.add_argument("--out", type=Path, default=DEFAULT_OUT)
    evaluate.add_argument("--write-manifest", action="store_true", help="store KID in the entries")
    _common(evaluate)
    evaluate.set_defaults(handler=_evaluate)
    heldout = sub.add_parser(
        "heldout", help="named styles on held-out clips of every class: KID cut, spread, margin"
    )
    heldout.add_argument("--out", type=Path, default=DEFAULT_OUT)
    heldout.add_argument("--clips-per-class", type=int, default=8)
    heldout.add_argument("--frames-per-clip", type=int, default=5)
    heldout.add_argument("--report", type=Path, default=REPO_ROOT / "docs" / "styles_heldout.json")
    heldout.add_argument(
        "--runs",
        nargs="*",
        default=[],
        metavar="STYLE=RUN",
        help="also judge these training runs (folders or checkpoints), e.g. the averaged seeds",
    )
    heldout.add_argument(
        "--runtime",
        choices=["onnxruntime", "openvino"],
        default="onnxruntime",
        help="paint the named styles in float32 (onnxruntime) or as workers do (openvino)",
    )
    _common(heldout)
    heldout.set_defaults(handler=_heldout)
    compare = sub.add_parser(
        "compare", help="candidate students' KID on training-group frames (to choose among runs)"
    )
    compare.add_argument("--style", required=True)
    compare.add_argument(
        "candidates", nargs="+", type=Path, help="run folders (their last.pt) or checkpoint files"
    )
    compare.add_argument(
        "--frames", type=int, default=0, help="an evenly spaced sample of the frames (0: all)"
    )
    _common(compare)
    compare.set_defaults(handler=_compare)
    bundle = sub.add_parser("bundle", help="style training data as JPEGs, for another machine")
    bundle.add_argument("--dest", type=Path, required=True)
    _common(bundle)
    bundle.set_defaults(handler=_bundle)
    unbundle = sub.add_parser("unbundle", help="rebuild the content cache from a bundle")
    unbundle.add_argument("--bundle", type=Path, required=True)
    _common(unbundle)
    unbundle.set_defaults(handler=_unbundle)
    figure = sub.add_parser("figure", help="docs/styles.png: frames | teacher | student")
    figure.add_argument("--out", type=Path, default=DEFAULT_OUT)
    figure.add_argument("--path", type=Path, default=REPO_ROOT / "docs" / "styles.png")
    _common(figure)
    figure.set_defaults(handler=_figure)


def add_style_commands(commands: argparse._SubParsersAction) -> None:
    """Register `cyclegan`, `distill` and `styles`; each sets `handler` to run it."""
    _add_cyclegan(commands)
    _add_distill(commands)
    _add_styles(commands)


def _cyclegan_train(args: argparse.Namespace) -> dict:

    run_dir = args.run_dir or REPO_ROOT / "runs" / "cyclegan" / args.style
    return run_cyclegan(options_from_args(CycleGANOptions, args, run_dir=run_dir))


def _cyclegan_import(args: argparse.Namespace) -> dict:

    entry = import_published_generator(
        args.checkpoint, args.style, args.out, measure_fps=not args.skip_fps
    )
    return {k: entry[k] for k in ("name", "file", "sha256", "metrics")}


def _distill_options(args: argparse.Namespace) -> DistillOptions:
    run_dir = args.run_dir or REPO_ROOT / "runs" / "styles" / args.style
    if args.handler is _distill_export:  # the options the run was trained with
        saved = json.loads((run_dir / "options.json").read_text())
        paths = {"data": args.data, "run_dir": run_dir, "cache_dir": args.cache_dir}
        return options_from_json(DistillOptions, saved, **paths)
    return options_from_args(DistillOptions, args, run_dir=run_dir)


def _distill_train(args: argparse.Namespace) -> dict:
    return run_distillation(_distill_options(args))


def _distill_export(args: argparse.Namespace) -> dict:

    entry = export_student(_distill_options(args), args.out, args.checkpoint)
    return {k: entry[k] for k in ("name", "file", "sha256", "metrics")}


def _distill_average(args: argparse.Namespace) -> dict:
    return average_students(args.runs, args.run_dir)


def _arbitrary(args: argparse.Namespace) -> dict:

    return export_arbitrary(args.out)


def _evaluate(args: argparse.Namespace) -> dict:

    report = REPO_ROOT / "runs" / "styles" / "kid.json"
    return evaluate_styles(
        args.out, args.data, args.cache_dir, args.write_manifest, args.limit, report
    )


def _heldout(args: argparse.Namespace) -> dict:
    return check_heldout(
        args.out,
        args.data,
        args.cache_dir,
        args.clips_per_class,
        args.frames_per_clip,
        report=args.report,
        runs=_runs_by_style(args.runs),
        runtime=args.runtime,
    )


def _runs_by_style(specs: list[str]) -> dict[str, list[Path]]:
    runs: dict[str, list[Path]] = {}
    for spec in specs:
        style, sep, path = spec.partition("=")
        if not sep or not path:
            raise SystemExit(f"--runs takes STYLE=RUN, not {spec!r}")
        runs.setdefault(style, []).append(Path(path))
    return runs


def _figure(args: argparse.Namespace) -> dict:

    return {"figure": str(styles_figure(args.out, args.data, args.cache_dir, args.path))}


def _bundle(args: argparse.Namespace) -> dict:

    return {"bundle": str(write_bundle(args.data, args.cache_dir, args.dest, args.limit))}


def _unbundle(args: argparse.Namespace) -> dict:

    return {"data": str(read_bundle(args.bundle, args.cache_dir))}


def _compare(args: argparse.Namespace) -> dict:

    return compare_on_training_frames(
        args.style, args.candidates, args.data, args.cache_dir, args.limit, args.frames
    )
