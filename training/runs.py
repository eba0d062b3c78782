"""What every training run does with its folder: options saved as JSON beside the checkpoints.

prepare_run_dir(options)  # threads, seed, run_dir/options.json
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from training.options import options_json


def prepare_run_dir(options: Any) -> Path:
    """Apply `threads` and `seed`, create `run_dir` and write `options.json` into it."""
    if options.threads:
        torch.set_num_threads(options.threads)
    torch.manual_seed(options.seed)
    run_dir = Path(options.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "options.json").write_text(json.dumps(options_json(options), indent=2))
    return run_dir
