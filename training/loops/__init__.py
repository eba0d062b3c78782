"""Training loops, picked by the model family's `loop`.

metrics = train(options)
"""

from __future__ import annotations

from training.loops.classification import TrainOptions, run_training
from training.loops.frozen_features import run_frozen_training
from training.models.registry import get_family

LOOPS = {"end_to_end": run_training, "frozen_features": run_frozen_training}


def train(options: TrainOptions) -> dict:
    return LOOPS[get_family(options.model).loop](options)
