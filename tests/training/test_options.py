"""Options dataclasses to and from the command line and JSON, defaults stated once."""

import argparse
from pathlib import Path

import pytest

from training.classify.training import TrainOptions
from training.options import (
    add_option_arguments,
    options_from_args,
    options_from_json,
    options_json,
)
from training.styles.distillation import DistillOptions


def _parse(cls, argv: list[str], **skip) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_option_arguments(parser, cls, **skip)
    return parser.parse_args(argv)


def test_flags_left_out_take_the_dataclass_defaults() -> None:
    args = _parse(TrainOptions, ["--model", "csn", "--data", "d", "--run-dir", "r", "--lr", "0.1"])
    options = options_from_args(TrainOptions, args)
    assert options == TrainOptions(model="csn", data=Path("d"), run_dir=Path("r"), lr=0.1)
    assert isinstance(options.data, Path) and options.epochs == TrainOptions.epochs


def test_lists_booleans_and_required_fields() -> None:
    argv = ["--model", "csn", "--data", "d", "--run-dir", "r", "--classes", "A", "B"]
    options = options_from_args(TrainOptions, _parse(TrainOptions, [*argv, "--no-balance-classes"]))
    assert options.classes == ["A", "B"] and options.balance_classes is False
    with pytest.raises(SystemExit):  # --model has no default: the flag is required
        _parse(TrainOptions, ["--data", "d", "--run-dir", "r"])


def test_fixed_values_win_and_skipped_fields_are_not_flags() -> None:
    args = _parse(
        DistillOptions, ["--style", "monet", "--iterations", "5"], skip={"data", "run_dir"}
    )
    assert not hasattr(args, "data")
    options = options_from_args(DistillOptions, args, data=Path("x"), run_dir=Path("y"))
    assert (options.style, options.iterations, options.run_dir) == ("monet", 5, Path("y"))


def test_json_round_trip_restores_paths_and_drops_unknown_keys() -> None:
    options = TrainOptions(model="csn", data=Path("d"), run_dir=Path("r"), classes=["A"])
    saved = {**options_json(options), "an_option_since_removed": 1}
    assert options_from_json(TrainOptions, saved) == options
    assert options_from_json(TrainOptions, saved, data=Path("e")).data == Path("e")
