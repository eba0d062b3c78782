"""One checkpoint format for every training loop: a dict, saved atomically, loaded whole.

Every checkpoint holds `model` (a state dict), `optimiser`, `config` (what rebuilds the model),
`options` (the run's options as JSON), a progress counter (`epoch` or `iteration`),
`train_time_s` and `history`; a loop adds its own keys (`best_metric`, `critic`, ...).
Resuming is loading `last.pt`; an interrupted save never corrupts it.

    save_checkpoint(run_dir / "last.pt", state)
    state = resume_state(run_dir)  # None for a fresh run
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

LAST = "last.pt"
BEST = "best.pt"


def save_checkpoint(path: Path, state: dict) -> None:
    """Write `state` to `path` through a temporary file, so readers see old or new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(state, tmp)
    tmp.replace(path)


def load_state(path: Path, device: str | torch.device = "cpu") -> dict:
    """A checkpoint written by `save_checkpoint` (ours: it holds options and config as JSON)."""
    state = torch.load(path, map_location=device, weights_only=False)
    if "training_time_s" in state:  # classifier checkpoints written before the one format
        state.setdefault("train_time_s", state.pop("training_time_s"))
    return state


def resume_state(run_dir: Path, device: str | torch.device = "cpu") -> dict | None:
    """The run's last checkpoint, or None when the run has not saved one yet."""
    path = Path(run_dir) / LAST
    return load_state(path, device) if path.exists() else None
