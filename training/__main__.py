"""Command line for the offline half: train, evaluate and export classifiers.

python -m training train --model r2plus1d --data ../shared/data --run-dir runs/r2plus1d
python -m training evaluate --run-dir runs/r2plus1d --data ../shared/data
python -m training export --run-dir runs/r2plus1d --data ../shared/data --default
python -m training report  # docs/models.md from exported_models/manifest.json
python -m training codec-check --data ../shared/data  # held-out top-1, as stored and re-encoded
python -m training eda ../shared/data  # docs/eda/
python -m training open-set --run-dir runs/effnet_temporal --data ../shared/data  # thresholds only
python -m training export-encoder --data ../shared/data  # frozen encoder for custom classifiers
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from training.classify.models.registry import FAMILIES
from training.styles.cli import add_style_commands, run_style_command

REPO_ROOT = Path(__file__).resolve().parents[1]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a classifier (resumes from RUN_DIR/last.pt)")
    train.add_argument("--model", choices=sorted(FAMILIES), required=True)
    train.add_argument(
        "--data", type=Path, required=True, help="data root (UCF-101 layout or frame folders)"
    )
    train.add_argument("--run-dir", type=Path, help="default: runs/<model>")
    train.add_argument(
        "--classes", nargs="+", help="train on these classes only (default: all found)"
    )
    train.add_argument("--epochs", type=int, help="default: the family's")
    train.add_argument("--batch-size", type=int, help="default: the family's")
    train.add_argument("--lr", type=float, help="peak learning rate; default: the family's")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    train.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    train.add_argument("--cache-dir", type=Path, default=REPO_ROOT / ".cache" / "clips")
    train.add_argument("--max-train-clips", type=int, default=0, help="smoke runs only")
    train.add_argument(
        "--teacher-run", default="", help="also learn this trained run's predictions (distillation)"
    )
    train.add_argument("--distill-weight", type=float, default=0.5)

    evaluate = commands.add_parser("evaluate", help="held-out test metrics of RUN_DIR/best.pt")
    evaluate.add_argument("--run-dir", type=Path, required=True)
    evaluate.add_argument("--data", type=Path, required=True)

    export = commands.add_parser("export", help="ONNX + parity check + manifest entry")
    export.add_argument("--run-dir", type=Path, required=True)
    export.add_argument("--data", type=Path, required=True, help="for parity on real clips")
    export.add_argument("--out", type=Path, default=REPO_ROOT / "exported_models")
    export.add_argument("--name", help="model name in the manifest (default: the family)")
    export.add_argument("--default", action="store_true", help="make it the default classifier")

    open_set = commands.add_parser(
        "open-set", help="recompute an exported model's open-set thresholds (ONNX unchanged)"
    )
    open_set.add_argument("--run-dir", type=Path, required=True)
    open_set.add_argument("--data", type=Path, required=True)
    open_set.add_argument("--out", type=Path, default=REPO_ROOT / "exported_models")
    open_set.add_argument("--name", help="model name in the manifest (default: the family)")

    encoder = commands.add_parser(
        "export-encoder", help="the frozen EfficientNet-Lite0 encoder that custom classifiers use"
    )
    encoder.add_argument("--data", type=Path, required=True, help="for parity on real clips")
    encoder.add_argument("--out", type=Path, default=REPO_ROOT / "exported_models")

    codec = commands.add_parser(
        "codec-check", help="held-out top-1 of exported classifiers as stored and re-encoded"
    )
    codec.add_argument("--data", type=Path, required=True)
    codec.add_argument("--models", type=Path, default=REPO_ROOT / "exported_models")
    codec.add_argument("--cache-dir", type=Path, default=REPO_ROOT / ".cache" / "transcoded")
    codec.add_argument("--name", nargs="+", help="only these classifiers (default: all)")

    eda = commands.add_parser("eda", help="exploration report of a data root: PNGs + summary.json")
    eda.add_argument("data", type=Path)
    eda.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "eda")
    eda.add_argument("--classes", nargs="+")
    eda.add_argument("--max-clips-per-class", type=int, default=0)

    report = commands.add_parser(
        "report", help="comparison table + confusion matrices from the manifest"
    )
    report.add_argument("--models", type=Path, default=REPO_ROOT / "exported_models")
    report.add_argument("--out", type=Path, default=REPO_ROOT / "docs")
    add_style_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if hasattr(args, "style_handler"):
        print(json.dumps(run_style_command(args), indent=2))
        return 0
    # Imported here so `--help` answers without loading torch.
    from training.classify.export import export_classifier
    from training.classify.loops import train
    from training.classify.training import TrainOptions, evaluate_run

    if args.command == "train":
        family = FAMILIES[args.model]
        options = TrainOptions(
            model=args.model,
            data=args.data,
            run_dir=args.run_dir or REPO_ROOT / "runs" / args.model,
            classes=args.classes,
            epochs=args.epochs or family.epochs,
            batch_size=args.batch_size or family.batch_size,
            lr=args.lr or family.lr,
            seed=args.seed,
            device=args.device,
            threads=args.threads,
            cache_dir=args.cache_dir,
            max_train_clips=args.max_train_clips,
            teacher_run=args.teacher_run,
            distill_weight=args.distill_weight,
        )
        result = train(options)
    elif args.command == "evaluate":
        result = evaluate_run(args.run_dir, args.data)
    elif args.command == "export":
        entry = export_classifier(args.run_dir, args.out, args.data, args.name, args.default)
        result = {k: entry[k] for k in ("name", "file", "sha256", "metrics")}
    elif args.command == "open-set":
        from training.classify.export import update_open_set

        result = update_open_set(args.run_dir, args.out, args.data, args.name)
    elif args.command == "export-encoder":
        from training.classify.export_encoder import export_encoder

        entry = export_encoder(args.out, args.data)
        result = {k: entry[k] for k in ("name", "file", "sha256", "metrics")}
    elif args.command == "codec-check":
        from training.classify.codec_check import check_codecs

        result = check_codecs(args.models, args.data, args.cache_dir, args.name)
    elif args.command == "eda":
        from training.classify.eda import run_eda

        result = run_eda(args.data, args.out, args.classes, args.max_clips_per_class)
    else:
        from training.classify.reports import write_report

        result = {"report": str(write_report(args.models, args.out))}
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
