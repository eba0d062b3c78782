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
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data"
DEFAULT_OUT = REPO_ROOT / "exported_models"
DEFAULT_CACHE = REPO_ROOT / ".cache" / "styles"


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared data root")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--limit", type=int, default=0, help="smoke runs: images/clips per set")


def _device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast on CUDA")


def _add_cyclegan(commands: argparse._SubParsersAction) -> None:
    cyclegan = commands.add_parser("cyclegan", help="train or import CycleGAN generators")
    sub = cyclegan.add_subparsers(dest="style_command", required=True)
    train = sub.add_parser("train", help="unpaired training (resumes from RUN_DIR/last.pt)")
    train.add_argument("--style", required=True)
    train.add_argument("--run-dir", type=Path)
    train.add_argument("--ngf", type=int, default=32)
    train.add_argument("--n-blocks", type=int, default=6)
    train.add_argument("--size", type=int, default=128)
    train.add_argument("--epochs", type=int, default=10)
    train.add_argument("--decay-epochs", type=int, default=10)
    train.add_argument("--epoch-iterations", type=int, default=200)
    train.add_argument("--batch-size", type=int, default=1)
    train.add_argument("--time-limit-s", type=float, default=0.0, help="pause (resumable)")
    train.add_argument(
        "--time-budget-s", type=float, default=0.0, help="schedule the whole run by time"
    )
    _device(train)
    _common(train)
    train.set_defaults(style_handler=_cyclegan_train)

    imp = sub.add_parser("import", help="published latest_net_G.pth -> ONNX + manifest entry")
    imp.add_argument("checkpoint", type=Path)
    imp.add_argument("--style", required=True, help="name of the style in the manifest")
    imp.add_argument("--out", type=Path, default=DEFAULT_OUT)
    imp.add_argument("--skip-fps", action="store_true", help="do not time it at 320x240")
    imp.set_defaults(style_handler=_cyclegan_import)


def _add_distill(commands: argparse._SubParsersAction) -> None:
    distill = commands.add_parser("distill", help="train and export fast student stylizers")
    sub = distill.add_subparsers(dest="style_command", required=True)
    train = sub.add_parser("train", help="distil the teacher into a student (resumes)")
    train.add_argument("--style", required=True)
    train.add_argument("--run-dir", type=Path)
    train.add_argument(
        "--teacher-vector", default="mean", help="mean, extrapolate:A, painting:NAME"
    )
    train.add_argument(
        "--teacher-checkpoint",
        default="",
        help="a CycleGAN run's last.pt (or a published .pth) as the teacher instead",
    )
    train.add_argument("--student", default="small", choices=["small", "tiny"])
    train.add_argument("--iterations", type=int, default=1500)
    train.add_argument("--batch-size", type=int, default=4)
    train.add_argument("--crop", type=int, default=192)
    train.add_argument("--lr", type=float, default=2e-3)
    train.add_argument("--w-pixel", type=float, default=1.0, help="L1 to the teacher's output")
    train.add_argument("--w-perceptual", type=float, default=0.01)
    train.add_argument("--w-style", type=float, default=0.0)
    train.add_argument(
        "--w-adversarial", type=float, default=0.0, help="PatchGAN critic vs the paintings"
    )
    train.add_argument("--time-limit-s", type=float, default=0.0, help="pause (resumable)")
    train.add_argument(
        "--time-budget-s", type=float, default=0.0, help="schedule the whole run by time"
    )
    train.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    train.add_argument("--init-from", default="", help="a student last.pt to fine-tune from")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument(
        "--keep-snapshots",
        action="store_true",
        help="keep every checkpoint in RUN_DIR/snapshots/, to compare them afterwards",
    )
    _common(train)
    train.set_defaults(style_handler=_distill_train)

    export = sub.add_parser("export", help="student ONNX + thumbnail + metrics + manifest entry")
    export.add_argument("--style", required=True)
    export.add_argument("--run-dir", type=Path)
    export.add_argument(
        "--checkpoint", type=Path, help="one of the run's snapshots (default: RUN_DIR/last.pt)"
    )
    export.add_argument("--out", type=Path, default=DEFAULT_OUT)
    _common(export)
    export.set_defaults(style_handler=_distill_export)


def _add_styles(commands: argparse._SubParsersAction) -> None:
    styles = commands.add_parser("styles", help="arbitrary-style export, KID evaluation, figure")
    sub = styles.add_subparsers(dest="style_command", required=True)
    arbitrary = sub.add_parser("arbitrary", help="copy the Magenta networks into exported_models")
    arbitrary.add_argument("--out", type=Path, default=DEFAULT_OUT)
    arbitrary.set_defaults(style_handler=lambda a: _arbitrary(a))
    evaluate = sub.add_parser("evaluate", help="KID of exported styles vs each painter's set")
    evaluate.add_argument("--out", type=Path, default=DEFAULT_OUT)
    evaluate.add_argument("--write-manifest", action="store_true", help="store KID in the entries")
    _common(evaluate)
    evaluate.set_defaults(style_handler=_evaluate)
    compare = sub.add_parser(
        "compare", help="candidate students' KID on training-group frames (to choose among runs)"
    )
    compare.add_argument("--style", required=True)
    compare.add_argument(
        "candidates", nargs="+", type=Path, help="run folders (their last.pt) or checkpoint files"
    )
    _common(compare)
    compare.set_defaults(style_handler=_compare)
    bundle = sub.add_parser("bundle", help="style training data as JPEGs, for another machine")
    bundle.add_argument("--dest", type=Path, required=True)
    _common(bundle)
    bundle.set_defaults(style_handler=_bundle)
    unbundle = sub.add_parser("unbundle", help="rebuild the content cache from a bundle")
    unbundle.add_argument("--bundle", type=Path, required=True)
    _common(unbundle)
    unbundle.set_defaults(style_handler=_unbundle)
    figure = sub.add_parser("figure", help="docs/styles.png: frames | teacher | student")
    figure.add_argument("--out", type=Path, default=DEFAULT_OUT)
    figure.add_argument("--path", type=Path, default=REPO_ROOT / "docs" / "styles.png")
    _common(figure)
    figure.set_defaults(style_handler=_figure)


def add_style_commands(commands: argparse._SubParsersAction) -> None:
    """Register `cyclegan`, `distill` and `styles`; each sets `style_handler` to run it."""
    _add_cyclegan(commands)
    _add_distill(commands)
    _add_styles(commands)


def run_style_command(args: argparse.Namespace) -> dict:
    return args.style_handler(args)


def _cyclegan_train(args: argparse.Namespace) -> dict:
    from training.styles.train_cyclegan import CycleGANOptions, run_cyclegan

    return run_cyclegan(
        CycleGANOptions(
            style=args.style,
            data=args.data,
            run_dir=args.run_dir or REPO_ROOT / "runs" / "cyclegan" / args.style,
            cache_dir=args.cache_dir,
            ngf=args.ngf,
            n_blocks=args.n_blocks,
            size=args.size,
            epochs=args.epochs,
            decay_epochs=args.decay_epochs,
            epoch_iterations=args.epoch_iterations,
            threads=args.threads,
            time_limit_s=args.time_limit_s,
            time_budget_s=args.time_budget_s,
            batch_size=args.batch_size,
            device=args.device,
            bf16=args.bf16,
            limit=args.limit,
        )
    )


def _cyclegan_import(args: argparse.Namespace) -> dict:
    from training.styles.importer import import_published_generator

    entry = import_published_generator(
        args.checkpoint, args.style, args.out, measure_fps=not args.skip_fps
    )
    return {k: entry[k] for k in ("name", "file", "sha256", "metrics")}


def _distill_options(args: argparse.Namespace):  # -> DistillOptions
    from training.styles.distillation import DistillOptions

    run_dir = args.run_dir or REPO_ROOT / "runs" / "styles" / args.style
    saved = run_dir / "options.json"
    if not hasattr(args, "iterations"):  # export: rebuild the options the run was trained with
        values = json.loads(saved.read_text())
        values.update(data=args.data, run_dir=run_dir, cache_dir=args.cache_dir)
        return DistillOptions(**values)
    return DistillOptions(
        style=args.style,
        data=args.data,
        run_dir=run_dir,
        cache_dir=args.cache_dir,
        teacher_vector=args.teacher_vector,
        teacher_checkpoint=args.teacher_checkpoint,
        student=args.student,
        iterations=args.iterations,
        batch_size=args.batch_size,
        crop=args.crop,
        lr=args.lr,
        w_pixel=args.w_pixel,
        w_perceptual=args.w_perceptual,
        w_style=args.w_style,
        w_adversarial=args.w_adversarial,
        threads=args.threads,
        time_limit_s=args.time_limit_s,
        time_budget_s=args.time_budget_s,
        device=args.device,
        init_from=args.init_from,
        seed=args.seed,
        keep_snapshots=args.keep_snapshots,
        limit=args.limit,
    )


def _distill_train(args: argparse.Namespace) -> dict:
    from training.styles.distillation import run_distillation

    return run_distillation(_distill_options(args))


def _distill_export(args: argparse.Namespace) -> dict:
    from training.styles.pipeline import export_student

    entry = export_student(_distill_options(args), args.out, args.checkpoint)
    return {k: entry[k] for k in ("name", "file", "sha256", "metrics")}


def _arbitrary(args: argparse.Namespace) -> dict:
    from training.styles.export import export_arbitrary

    return export_arbitrary(args.out)


def _evaluate(args: argparse.Namespace) -> dict:
    from training.styles.pipeline import evaluate_styles

    report = REPO_ROOT / "runs" / "styles" / "kid.json"
    return evaluate_styles(
        args.out, args.data, args.cache_dir, args.write_manifest, args.limit, report
    )


def _figure(args: argparse.Namespace) -> dict:
    from training.styles.pipeline import styles_figure

    return {"figure": str(styles_figure(args.out, args.data, args.cache_dir, args.path))}


def _bundle(args: argparse.Namespace) -> dict:
    from training.styles.bundle import write_bundle

    return {"bundle": str(write_bundle(args.data, args.cache_dir, args.dest, args.limit))}


def _unbundle(args: argparse.Namespace) -> dict:
    from training.styles.bundle import read_bundle

    return {"data": str(read_bundle(args.bundle, args.cache_dir))}


def _compare(args: argparse.Namespace) -> dict:
    from training.styles.pipeline import compare_on_training_frames

    return compare_on_training_frames(
        args.style, args.candidates, args.data, args.cache_dir, args.limit
    )
