"""Training loops, picked by the model family's `loop`.

metrics = train(options)
"""

from __future__ import annotations

from training.classify.end_to_end import run_training
from training.classify.frozen_features import run_frozen_training
from training.classify.models.registry import get_family
from training.classify.training import TrainOptions

LOOPS = {"end_to_end": run_training, "frozen_features": run_frozen_training}


def train(options: TrainOptions) -> dict:
    return LOOPS[get_family(options.model).loop](options)
