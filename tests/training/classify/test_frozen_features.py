"""The EfficientNet loop: frozen trunk maps cached, the head (and a tuned top) trained on them.

EfficientNet-Lite0's trunk maps cached, a copy of its last stages fine-tuned with the head
(`effnet_tuned`) or the head alone (`effnet_temporal`, the default), the whole model exported
with its open-set output (from the untouched ImageNet top).
"""

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from service.contract.manifest import load_manifest_content
from tests.utils.data import REPO_ROOT, SHARED_DATA
from training.__main__ import main
from training.classify.encoder_study import encoder_study
from training.classify.export import build_open_set, export_classifier
from training.classify.group_cv import group_folds
from training.classify.i3d_study import i3d_study
from training.classify.input_size_study import SERVING_VIEWS, input_size_study, serving_view_study
from training.classify.loops import train
from training.classify.models.effnet_temporal import effnet_temporal, effnet_tuned
from training.classify.models.registry import get_family
from training.classify.motion_study import FLOW_GAIN, flow_images, motion_study
from training.classify.open_set_study import CANDIDATES, leave_one_class_out
from training.classify.pooling_study import (
    MEAN_AND_MAX_HEADS,
    POOLINGS,
    mean_pooled_features,
    pooling_study,
)
from training.classify.training import TrainOptions, load_checkpoint, prepare_split
from training.efficientnet_lite import default_weights_path


def smoke_options(model: str, root: Path, epochs: int, clips: int) -> TrainOptions:
    return TrainOptions(
        model=model,
        data=SHARED_DATA,
        run_dir=root / "run",
        epochs=epochs,
        batch_size=4,
        lr=1e-3,
        max_train_clips=clips,
        cache_dir=root / "cache",
    )


def test_effnet_run_tunes_the_top_copy_only_and_exports(tmp_path: Path) -> None:
    options = smoke_options("effnet_tuned", tmp_path, epochs=2, clips=3)
    metrics = train(options)
    assert metrics["clips"] == 3 and (tmp_path / "run" / "train_maps.pt").exists()

    model, _ = load_checkpoint(tmp_path / "run")
    pretrained = torch.load(default_weights_path(), weights_only=True)
    # the encoder is the ImageNet one, untouched by training; its tuned copy of the top moved
    assert all(torch.equal(v, pretrained[k]) for k, v in model.encoder.state_dict().items())
    assert not torch.equal(model.tuned_top.conv_head.weight, pretrained["_conv_head.weight"])

    entry = export_classifier(tmp_path / "run", tmp_path / "models", SHARED_DATA)
    assert entry["input"]["crop"] == 224 and entry["open_set"]["output_name"] == "ood_distance"
    assert entry["metrics"]["onnx_parity_max_abs_diff"] <= 1e-4

    train(replace(options, epochs=3))  # resumes: one more epoch on the cached maps
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [h["epoch"] for h in history] == [0, 1, 2]


def test_default_trains_the_head_alone_on_the_frozen_encoder(tmp_path: Path) -> None:
    options = smoke_options("effnet_temporal", tmp_path, epochs=1, clips=2)
    assert train(options)["clips"] == 2
    model, _ = load_checkpoint(tmp_path / "run")
    assert model.tuned_top is None

    # A rerun on the maps cached by the first run trains exactly as the first did: the frozen
    # encoder's batch norm stays in inference mode whether the maps were computed or loaded.
    first = json.loads((tmp_path / "run" / "history.json").read_text())
    for name in ("best.pt", "last.pt", "history.json"):
        (tmp_path / "run" / name).unlink()
    train(options)
    rerun = json.loads((tmp_path / "run" / "history.json").read_text())
    assert rerun == first


def test_tuned_top_starts_as_imagenet_and_the_open_set_embedding_stays_imagenet() -> None:
    torch.manual_seed(0)
    tuned, frozen = effnet_tuned(num_classes=9), effnet_temporal(num_classes=9, heads=1)
    frozen.head.load_state_dict(tuned.head.state_dict())
    clip = torch.randn(1, 3, 4, 96, 96)
    with torch.no_grad():
        assert torch.allclose(tuned.eval()(clip), frozen.eval()(clip), atol=1e-5)
        for parameter in tuned.tuned_top.parameters():
            parameter.add_(0.01)
        logits, ood = tuned.logits_and_ood_embedding(clip)
        frozen_logits, frozen_ood = frozen.logits_and_ood_embedding(clip)
    assert torch.equal(ood, frozen_ood) and not torch.allclose(logits, frozen_logits)


def test_refit_learns_the_validation_clips_too_and_keeps_its_references_thresholds(
    tmp_path: Path,
) -> None:
    reference = smoke_options("effnet_temporal", tmp_path, epochs=1, clips=2)
    train(reference)
    refit = replace(reference, run_dir=tmp_path / "refit", refit_from=str(reference.run_dir))
    metrics = train(replace(refit, epochs=2))

    assert metrics["train_clips"] == 4  # 2 training + 2 validation clips
    reference_metrics = json.loads((reference.run_dir / "metrics.json").read_text())
    assert metrics["training_time_s"] > reference_metrics["training_time_s"]  # both runs count
    assert (refit.run_dir / "val_train_maps.pt").exists()
    _, state = load_checkpoint(refit.run_dir)
    assert state["epoch"] == 1  # the last epoch, whatever validation says: it trained on it

    # The probability floor is the reference's: validation clips are training clips to the refit.
    split = prepare_split(reference)
    spec = get_family("effnet_temporal").clip_spec
    thresholds = []
    for run_dir in (reference.run_dir, refit.run_dir):
        model, state = load_checkpoint(run_dir)
        _, open_set = build_open_set(model, state, split, spec, SHARED_DATA)
        thresholds.append((open_set["threshold"], open_set["min_top1_probability"]))
    assert thresholds[0] == thresholds[1]

    # From the command line, a refit trains as many epochs as the reference's validation chose.
    main(
        ["train", "--model", "effnet_temporal", "--data", str(SHARED_DATA), "--run-dir",
         str(tmp_path / "cli"), "--refit-from", str(reference.run_dir), "--max-train-clips", "2",
         "--batch-size", "4", "--cache-dir", str(reference.cache_dir)]
    )  # fmt: skip
    chosen = json.loads((reference.run_dir / "metrics.json").read_text())["best_epoch"]
    assert len(json.loads((tmp_path / "cli" / "history.json").read_text())) == chosen + 1


def test_refit_is_refused_for_a_family_trained_end_to_end(tmp_path: Path) -> None:
    options = replace(smoke_options("csn", tmp_path, 1, 2), refit_from=str(tmp_path / "x"))
    with pytest.raises(ValueError, match="frozen-feature family"):
        train(options)


@pytest.fixture(scope="module")
def smoke_effnet_run(tmp_path_factory: pytest.TempPathFactory) -> TrainOptions:
    """A one-epoch default-recipe run on a few clips, which the studies below read."""
    options = smoke_options("effnet_temporal", tmp_path_factory.mktemp("effnet"), 1, clips=6)
    train(options)
    return options


def test_open_set_study_scores_every_candidate_on_each_class_left_out(
    smoke_effnet_run: TrainOptions,
) -> None:
    options = smoke_effnet_run
    result = leave_one_class_out(options.run_dir, SHARED_DATA)

    studied = result["flagged_when_left_out"]
    assert set(studied) == set(CANDIDATES)
    for shares in studied.values():
        assert shares["per_class"] and all(0 <= x <= 1 for x in shares["per_class"].values())
    assert json.loads((options.run_dir / "open_set_study.json").read_text()) == result


def test_input_size_study_cross_validates_by_group_at_each_size(
    smoke_effnet_run: TrainOptions, tmp_path: Path
) -> None:
    out = tmp_path / "study"
    result = input_size_study(smoke_effnet_run.run_dir, SHARED_DATA, sizes=(160, 128), out=out)

    assert set(result["sizes"]) == {"160", "128"}
    for measured in result["sizes"].values():
        assert 0 <= measured["cv_top1"] <= 1 and set(measured["per_seed"]) == {"0", "1", "2"}
    features = torch.load(out / "features_160.pt", weights_only=True)
    assert features["augmented"].shape[1:] == (6, 8, 1280)  # six views of eight frames a clip
    assert json.loads((out / "input_size_study.json").read_text()) == result


def test_serving_view_study_scores_every_view_with_the_same_heads(
    smoke_effnet_run: TrainOptions, tmp_path: Path
) -> None:
    out = tmp_path / "study"
    result = serving_view_study(smoke_effnet_run.run_dir, SHARED_DATA, out=out)

    assert set(result["views"]) == set(SERVING_VIEWS)
    assert result["views"]["centre+mirror"]["encoder_cost"] == 2.0
    served = torch.load(out / "serving_views_224.pt", weights_only=True)
    stored = torch.load(out / "features_224.pt", weights_only=True)["serving"]
    assert torch.equal(served["centre"], stored)  # the shipped view, as the size study served it
    assert served["full"].shape == stored.shape and not torch.equal(served["full"], stored)
    assert not torch.equal(served["centre_mirror"], stored)
    more = served  # the same file: each clip decoded once for every view
    assert more["centre_16"].shape[1] == 16 and more["centre_12"].shape[1] == 12
    # the centre crop scored by the same heads as the size study's 224 px: the same figures
    at_224 = input_size_study(smoke_effnet_run.run_dir, SHARED_DATA, sizes=(224,), out=out)
    centre = result["views"]["centre"]
    assert {k: centre[k] for k in ("cv_top1", "per_seed", "per_class")} == at_224["sizes"]["224"]
    assert json.loads((out / "serving_view_study.json").read_text()) == result


def test_pooling_study_trains_heads_as_wide_as_each_pooling_at_the_size_asked(
    smoke_effnet_run: TrainOptions, tmp_path: Path
) -> None:
    run_dir = smoke_effnet_run.run_dir
    study = ["pooling-study", "--run-dir", str(run_dir), "--data", str(SHARED_DATA)]
    result_path = run_dir / "pooling_study" / "pooling_study_160.json"
    assert main([*study, "--input-size", "160", "--poolings", "gem"]) == 0
    gem_alone = json.loads(result_path.read_text())["poolings"]
    assert set(gem_alone) == {"gem"}

    assert main([*study, "--input-size", "160"]) == 0  # on the cached features
    result = json.loads(result_path.read_text())
    assert result["input_size"] == 160
    assert result["poolings"]["gem"] == gem_alone["gem"]

    widths = {name: measured["features"] for name, measured in result["poolings"].items()}
    assert widths == {
        "avg": 1280,
        "max": 1280,
        "avg+max": 2560,
        "avg+logit-max": 2280,
        "gem": 1280,
        MEAN_AND_MAX_HEADS: 1280,
    }
    assert set(result["poolings"]) == {*POOLINGS, MEAN_AND_MAX_HEADS}
    # average pooling is the encoder's own: the size study's figures at that size, to the digit
    at_160 = input_size_study(
        smoke_effnet_run.run_dir, SHARED_DATA, sizes=(160,), out=tmp_path / "sizes"
    )["sizes"]["160"]
    avg = result["poolings"]["avg"]
    assert {k: avg[k] for k in ("cv_top1", "per_seed", "per_class")} == at_160


def test_encoder_study_cross_validates_lite2_beside_lite0_and_both_averaged(
    smoke_effnet_run: TrainOptions, tmp_path: Path
) -> None:
    run_dir = smoke_effnet_run.run_dir
    out = tmp_path / "study"
    with pytest.raises(FileNotFoundError, match="pooling-study"):
        encoder_study(run_dir, SHARED_DATA, out=tmp_path / "early", size=128)
    lite0 = pooling_study(run_dir, SHARED_DATA, poolings=("avg",))["poolings"]["avg"]
    result = encoder_study(run_dir, SHARED_DATA, out=out, size=128)

    rows = result["encoders"]
    assert set(rows) == {"lite0@224", "lite2@128", "lite0 | lite2 heads averaged"}
    # Lite0's heads, trained again here on the pooling study's features: its figures exactly
    assert rows["lite0@224"] == {k: lite0[k] for k in ("cv_top1", "per_seed", "per_class")}
    for row in rows.values():
        assert 0 <= row["cv_top1"] <= 1 and set(row["per_seed"]) == {"0", "1", "2"}
    features = torch.load(out / "features_lite2_128.pt", weights_only=True)
    assert features["augmented"].shape[1:] == (6, 8, 1280)  # six views of eight frames a clip
    assert features["serving"].shape[0] == features["augmented"].shape[0]
    assert json.loads((out / "encoder_study.json").read_text()) == result
    assert encoder_study(run_dir, SHARED_DATA, out=out, size=128) == result  # from its caches


def test_group_folds_keep_each_group_on_one_side() -> None:
    split = prepare_split(smoke_options("effnet_temporal", Path("/nonexistent"), 1, 0))
    records = split.train + split.val
    folds = group_folds(records, 4)
    fold_of_group: dict[tuple[str, str], set[int]] = {}
    for record, fold in zip(records, folds, strict=True):
        fold_of_group.setdefault((record.label, record.group), set()).add(int(fold))
    assert all(len(f) == 1 for f in fold_of_group.values())
    for label in {r.label for r in records}:  # each class spread over as many folds as it can
        groups = {r.group for r in records if r.label == label}
        class_folds = {int(f) for r, f in zip(records, folds, strict=True) if r.label == label}
        assert len(class_folds) == min(4, len(groups))


def test_flow_images_show_motion_and_mirror_with_the_clip() -> None:
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.integers(0, 256, (120, 200), dtype=np.uint8), (5, 5), 0)
    moving = np.stack([np.roll(texture, 2 * t, axis=1) for t in range(6)])  # 2 px a frame, right
    frames = np.repeat(moving[..., None], 3, axis=3)
    images = flow_images(frames)

    assert images.shape == frames.shape and images.dtype == np.uint8
    centre = images[:, 30:90, 50:150].astype(float)
    # 4 px between frames FLOW_STEP apart, drawn at FLOW_GAIN grey levels a pixel
    assert np.median(centre[..., 0]) == pytest.approx(4 * FLOW_GAIN, abs=8)
    assert np.median(centre[..., 1]) < 8 and np.median(centre[..., 2]) == pytest.approx(64, abs=8)
    still = flow_images(np.repeat(frames[:1], 4, axis=0))
    assert still.max() <= 2
    mirrored = flow_images(frames[:, :, ::-1])[:, 30:90, 50:150]
    assert np.abs(mirrored.astype(float) - centre[:, :, ::-1]).mean() < 4


def test_motion_study_cross_validates_a_flow_stream_beside_rgb_and_both_fused(
    smoke_effnet_run: TrainOptions,
) -> None:
    run_dir = smoke_effnet_run.run_dir
    rgb = pooling_study(run_dir, SHARED_DATA, poolings=("avg",))["poolings"]["avg"]
    assert main(["motion-study", "--run-dir", str(run_dir), "--data", str(SHARED_DATA)]) == 0
    result = motion_study(run_dir, SHARED_DATA)  # from its caches

    rows = result["streams"]
    assert set(rows) == {"rgb", "flow", "rgb | flow heads averaged"}
    assert rows["rgb"] == {k: rgb[k] for k in ("cv_top1", "per_seed", "per_class")}
    for row in rows.values():
        assert 0 <= row["cv_top1"] <= 1 and set(row["per_seed"]) == {"0", "1", "2"}
    features = torch.load(run_dir / "motion_study" / "features_flow.pt", weights_only=True)
    assert features["augmented"].shape[1:] == (6, 8, 1280)  # six views of eight frames a clip
    stored = mean_pooled_features(run_dir)
    assert not torch.equal(features["serving"], stored["serving"])  # motion, not the frames
    assert json.loads((run_dir / "motion_study" / "motion_study.json").read_text()) == result


def test_i3d_study_cross_validates_kinetics_i3d_beside_lite0_on_the_shipped_recipe(
    tmp_path: Path,
) -> None:
    out = tmp_path / "study"
    result = i3d_study(SHARED_DATA, out, max_clips=3)
    manifest = load_manifest_content(REPO_ROOT / "exported_models")
    shipped = next(c for c in manifest.classifiers if c.name == "effnet_temporal")
    assert result["recipe"] == {k: shipped.training[k] for k in ("epochs", "seed")}
    assert result["clips"] == 6 and set(result["encoders"]) == {"i3d", "lite0"}
    for row in result["encoders"].values():
        assert 0 <= row["cv_top1"] <= 1 and set(row["per_seed"]) == {"0", "1", "2"}
    i3d = torch.load(out / "features_i3d.pt", weights_only=True)
    assert i3d["augmented"].shape[1:] == (6, 2, 1024)  # six views, a step per eight of 16 frames
    lite0 = torch.load(out / "features_lite0.pt", weights_only=True)
    assert lite0["augmented"].shape[1:] == (6, 8, 1280)
    assert json.loads((out / "i3d_study.json").read_text()) == result
    assert i3d_study(SHARED_DATA, out, max_clips=3) == result  # from its caches
