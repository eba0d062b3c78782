"""A tiny real training run: resumable, evaluated on held-out groups, exported with parity."""

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from service.contract.manifest import Manifest
from service.video.preprocess import ClipSpec
from tests.utils.data import SHARED_DATA
from training.classify.end_to_end import run_training
from training.classify.export import (
    ParityError,
    check_parity,
    export_classifier,
)
from training.classify.latency import one_clip_per_group, remeasure_latency
from training.classify.models.registry import get_family
from training.classify.open_set import OpenSetModel, class_distance
from training.classify.training import TrainOptions, load_checkpoint, trained_clip_spec
from training.classify.ucf101 import ClipRecord


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> TrainOptions:
    root = tmp_path_factory.mktemp("smoke")
    options = TrainOptions(
        model="r2plus1d",
        data=SHARED_DATA,
        run_dir=root / "run",
        epochs=1,
        batch_size=2,
        max_train_clips=4,
        cache_dir=root / "cache",
    )
    run_training(options)
    return options


def test_run_writes_checkpoints_and_metrics(smoke_run: TrainOptions) -> None:
    run_dir = smoke_run.run_dir
    assert {p.name for p in run_dir.iterdir()} >= {
        "options.json",
        "last.pt",
        "best.pt",
        "metrics.json",
    }
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["clips"] == 4 and 0.0 <= metrics["top1"] <= 1.0
    assert not set(metrics["test_groups"]) & {
        c for c in metrics["test_groups"] if c.endswith("/g20")
    }
    state = torch.load(run_dir / "last.pt", weights_only=False)
    assert {"model", "optimiser", "config", "epoch", "best_metric"} <= set(state)


def test_training_resumes_from_last_checkpoint(smoke_run: TrainOptions) -> None:
    first_epoch = torch.load(smoke_run.run_dir / "last.pt", weights_only=False)["history"][0]
    smoke_run.epochs = 2
    run_training(smoke_run)
    state = torch.load(smoke_run.run_dir / "last.pt", weights_only=False)
    # epoch 0 was not trained again: its record is carried over as it was
    assert state["epoch"] == 1 and state["history"][0] == first_epoch
    assert len(state["history"]) == 2


def test_export_checks_parity_and_writes_manifest(smoke_run: TrainOptions, tmp_path: Path) -> None:
    entry = export_classifier(smoke_run.run_dir, tmp_path, SHARED_DATA, name="smoke")
    assert entry["metrics"]["onnx_parity_max_abs_diff"] <= 1e-4
    manifest = Manifest.model_validate_json((tmp_path / "manifest.json").read_text())
    assert manifest.default_classifier == "smoke"
    session = ort.InferenceSession(str(tmp_path / "smoke.onnx"), providers=["CPUExecutionProvider"])
    batch = np.zeros((3, 3, 8, 112, 112), np.float32)  # the batch axis is dynamic
    logits, distance = session.run(["logits", "ood_distance"], {"clip": batch})
    assert logits.shape == (3, len(entry["labels"])) and distance.shape == (3,)
    open_set = entry["open_set"]
    assert open_set["output_name"] == "ood_distance" and open_set["threshold"] >= 0
    # the shared clips hold six actions outside the three classes
    assert open_set["unseen_action_clips"] == 6


def test_latency_is_measured_again_for_the_named_classifiers_only(
    smoke_run: TrainOptions, tmp_path: Path
) -> None:
    export_classifier(smoke_run.run_dir, tmp_path, SHARED_DATA, name="smoke")
    export_classifier(smoke_run.run_dir, tmp_path, SHARED_DATA, name="other")
    path = tmp_path / "manifest.json"
    before = {c.name: c for c in Manifest.model_validate_json(path.read_text()).classifiers}
    results = remeasure_latency(tmp_path, SHARED_DATA, ["smoke"])
    after = {c.name: c for c in Manifest.model_validate_json(path.read_text()).classifiers}
    assert set(results) == {"smoke"}
    assert after["smoke"].metrics.cpu_latency_ms == results["smoke"]["cpu_latency_ms"] > 0
    assert after["smoke"].metrics.cpu_latency_load == results["smoke"]["load_average_1min"] >= 0
    assert after["other"] == before["other"]
    assert after["smoke"].sha256 == before["smoke"].sha256  # the model itself is not touched


def test_parity_check_fails_on_a_different_model(smoke_run: TrainOptions, tmp_path: Path) -> None:
    export_classifier(smoke_run.run_dir, tmp_path, SHARED_DATA, name="smoke")
    model, _ = load_checkpoint(smoke_run.run_dir)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05)
    width = model.head[-1].in_features
    wrapped = OpenSetModel(model, class_distance(torch.randn(4, width), [0, 0, 1, 1]))
    with pytest.raises(ParityError, match="differ from torch"):
        check_parity(wrapped, tmp_path / "smoke.onnx", torch.randn(2, 3, 8, 112, 112))


def test_a_run_can_learn_from_a_teacher_run(smoke_run: TrainOptions, tmp_path: Path) -> None:
    from training.classify.end_to_end import teacher_soft_targets
    from training.classify.training import prepare_split

    split = prepare_split(smoke_run)
    soft = teacher_soft_targets(smoke_run.run_dir, split, temperature=4.0)
    assert soft.shape == (len(split.train), len(split.labels))
    assert torch.allclose(soft.sum(1), torch.ones(len(split.train)))

    student = TrainOptions(
        model="csn",
        data=SHARED_DATA,
        run_dir=tmp_path / "student",
        epochs=1,
        batch_size=2,
        max_train_clips=4,
        cache_dir=smoke_run.cache_dir,
        teacher_run=str(smoke_run.run_dir),
        distill_weight=0.7,
    )
    metrics = run_training(student)
    assert 0.0 <= metrics["top1"] <= 1.0
    saved = json.loads((student.run_dir / "options.json").read_text())
    assert saved["teacher_run"] == str(smoke_run.run_dir) and saved["distill_weight"] == 0.7


def test_a_run_is_fed_the_input_it_was_trained_on_not_its_family_current_one() -> None:
    family_spec = get_family("vgg_lstm").clip_spec
    trained = ClipSpec(resize_short=family_spec.resize_short + 32, crop=family_spec.crop + 32)
    config = {"family": "vgg_lstm", "clip_spec": trained.to_manifest()}
    assert trained_clip_spec(config) == trained != family_spec
    assert trained_clip_spec({"family": "vgg_lstm"}) == family_spec  # older checkpoints


def test_latency_is_measured_on_the_first_clip_of_every_held_out_group() -> None:
    def record(label: str, group: str, clip: int) -> ClipRecord:
        return ClipRecord(Path(f"{label}/v_{label}_{group}_c{clip:02d}.avi"), label, group, "video")

    records = [record("YoYo", "g02", 2), record("YoYo", "g01", 3), record("YoYo", "g01", 1)]
    records += [record("Punch", "g01", 4)]

    chosen = one_clip_per_group(records)

    assert sorted(str(r.path) for r in chosen) == [
        "Punch/v_Punch_g01_c04.avi",
        "YoYo/v_YoYo_g01_c01.avi",
        "YoYo/v_YoYo_g02_c02.avi",
    ]
