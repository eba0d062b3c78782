"""Options dataclasses to and from JSON and command-line arguments: the one place that knows how.

A run's options are a dataclass whose field defaults are the only defaults; the command line
is generated from the fields, `options.json` is written beside the run, and a checkpoint's
options are rebuilt from that JSON.

    add_option_arguments(parser, DistillOptions, skip={"data", "run_dir"})
    options = options_from_args(DistillOptions, args, run_dir=Path("runs/styles/vangogh"))
    same = options_from_json(DistillOptions, options_json(options))
"""

from __future__ import annotations

import argparse
from dataclasses import MISSING, asdict, fields
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def options_json(options: Any) -> dict:
    """A dataclass of options as JSON-ready values (paths as strings)."""
    return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(options).items()}


def _is_path(annotation: object) -> bool:
    return "Path" in str(annotation)


def options_from_json(cls: type[T], saved: dict, **overrides: Any) -> T:
    """Rebuild a dataclass of options from its JSON (as `options_json` wrote it).

    Unknown keys (options a later version dropped) are ignored, and fields typed `Path` become
    paths again; `overrides` replace saved values (such as a data root on another machine).
    """
    values = {**saved, **overrides}
    known = {}
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name in values:
            value = values[f.name]
            known[f.name] = Path(value) if _is_path(f.type) and isinstance(value, str) else value
    return cls(**known)


def add_option_arguments(
    parser: argparse.ArgumentParser,
    cls: type,
    skip: set[str] | frozenset[str] = frozenset(),
    helps: dict[str, str] | None = None,
) -> None:
    """One `--flag` per field of `cls` (underscores become dashes), typed from its default.

    Every flag defaults to None, so `options_from_args` can tell what was given and leave the
    rest to the dataclass's own defaults; fields without a default become required flags.
    """
    helps = helps or {}
    for f in fields(cls):
        has_factory = f.default_factory is not MISSING  # lists and dicts: not for the command line
        if f.name in skip or has_factory:
            continue
        flag = "--" + f.name.replace("_", "-")
        default = f.default
        text = helps.get(f.name, "")
        if default not in (MISSING, "", None) and "default" not in text:
            text = f"{text} (default: {default})".strip()
        if isinstance(default, bool):
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=None, help=text
            )
            continue
        many = "list" in str(f.type)
        kind = Path if _is_path(f.type) else type(default) if default is not MISSING else str
        if default is None or many or kind is type(None):
            kind = str
        parser.add_argument(
            flag,
            type=kind,
            nargs="+" if many else None,
            default=None,
            required=default is MISSING,
            help=text or None,
        )


def options_from_args(cls: type[T], args: argparse.Namespace, **fixed: Any) -> T:
    """The dataclass from the flags that were given; `fixed` values win over flags."""
    given = {
        f.name: getattr(args, f.name)
        for f in fields(cls)  # type: ignore[arg-type]
        if getattr(args, f.name, None) is not None
    }
    return cls(**{**given, **fixed})
