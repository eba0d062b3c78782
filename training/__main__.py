"""Command line for the offline half: `python -m training COMMAND ...`; `--help` lists them.

Classifier commands live in training/classify/cli.py, style commands in training/styles/cli.py;
every command sets a `handler` that returns a JSON-ready result, printed here.

python -m training train --model effnet_temporal --data ../shared/data
python -m training distill train --style vangogh --teacher-vector painting:00400.jpg
"""

from __future__ import annotations

import argparse
import json
import sys

from training.classify.cli import add_classify_commands
from training.styles.cli import add_style_commands


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    add_classify_commands(commands)
    add_style_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    print(json.dumps(args.handler(args), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
