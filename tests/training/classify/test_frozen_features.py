"""The default family's loop: cached frozen features, a head trained on them, then export.

Frozen EfficientNet-Lite0 features cached, a head trained on them, the whole model exported with
its open-set output.
"""

from pathlib import Path

import torch

from tests.utils.data import SHARED_DATA
from training.classify.export import export_classifier
from training.classify.loops import train
from training.classify.training import TrainOptions, load_checkpoint
from training.efficientnet_lite import default_weights_path


def test_frozen_feature_run_trains_the_head_only_and_exports(tmp_path: Path) -> None:
    options = TrainOptions(
        model="effnet_temporal",
        data=SHARED_DATA,
        run_dir=tmp_path / "run",
        epochs=2,
        batch_size=4,
        lr=1e-3,
        max_train_clips=3,
        cache_dir=tmp_path / "cache",
    )
    metrics = train(options)
    assert metrics["clips"] == 3 and (tmp_path / "run" / "train_features.pt").exists()

    model, _ = load_checkpoint(tmp_path / "run")
    pretrained = torch.load(default_weights_path(), weights_only=True)
    # the encoder is the ImageNet one, untouched by training
    assert torch.equal(model.encoder._conv_stem.weight, pretrained["_conv_stem.weight"])

    entry = export_classifier(tmp_path / "run", tmp_path / "models", SHARED_DATA)
    assert entry["input"]["crop"] == 224 and entry["open_set"]["output_name"] == "ood_distance"
    assert entry["metrics"]["onnx_parity_max_abs_diff"] <= 1e-4
