"""Training loops, picked by the model family's `loop`.

metrics = train(options)
"""

from __future__ import annotations

from training.classify.end_to_end import run_training
from training.classify.frozen_features import run_frozen_training
from training.classify.fusion_training import run_fusion_training
from training.classify.models.registry import get_family
from training.classify.training import TrainOptions

LOOPS = {
    "end_to_end": run_training,
    "frozen_features": run_frozen_training,
    "fusion": run_fusion_training,
}


def train(options: TrainOptions) -> dict:
    loop = get_family(options.model).loop
    if options.refit_from and loop != "frozen_features":
        raise ValueError(f"--refit-from needs a frozen-feature family, not {options.model}")
    return LOOPS[loop](options)
