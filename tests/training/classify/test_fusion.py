"""The I3D + Lite0 fusion: one input, each frozen encoder with its own heads and recipe."""

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from service.video.preprocess import normalise
from tests.utils.data import SHARED_DATA
from training.classify.cascade_study import cascade_study
from training.classify.export import export_classifier
from training.classify.fusion_study import fusion_study
from training.classify.fusion_training import FRAME_BRANCH_EPOCHS
from training.classify.group_cv import heads_averaged
from training.classify.int8_weights import round_conv_weights
from training.classify.loops import train
from training.classify.models.effnet_temporal import EFFNET_CLIP_SPEC
from training.classify.models.i3d_effnet_temporal import EXIT_MIN_TOP1, odd_frames_renormalised
from training.classify.models.i3d_temporal import I3D_CLIP_SPEC
from training.classify.open_set_cv import open_set_cv
from training.classify.training import TrainOptions, load_checkpoint, prepare_split
from training.efficientnet_lite import default_weights_path
from training.i3d import i3d_kinetics400


def all_nodes(graph: onnx.GraphProto):
    """The graph's nodes and those of its subgraphs (an If's branches)."""
    for node in graph.node:
        yield node
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                yield from all_nodes(attribute.g)


def test_lite0_gets_the_odd_frames_normalised_its_own_way() -> None:
    frames = np.random.default_rng(0).integers(0, 256, (16, 8, 8, 3), dtype=np.uint8)
    given = torch.from_numpy(normalise(frames, I3D_CLIP_SPEC))[None]

    renormalised = odd_frames_renormalised(given, I3D_CLIP_SPEC, EFFNET_CLIP_SPEC)

    expected = normalise(frames[1::2], EFFNET_CLIP_SPEC)[None]
    assert renormalised.shape == (1, 3, 8, 8, 8)
    np.testing.assert_allclose(renormalised.numpy(), expected, atol=1e-5)


def test_fusion_trains_both_branches_exports_one_file_and_its_study_reuses_the_features(
    tmp_path: Path,
) -> None:
    run = tmp_path / "run"
    options = TrainOptions(
        model="i3d_effnet_temporal",
        data=SHARED_DATA,
        run_dir=run,
        epochs=FRAME_BRANCH_EPOCHS + 1,
        max_train_clips=3,
        cache_dir=tmp_path / "cache",
    )
    split = prepare_split(options)
    metrics = train(options)
    # no epoch is chosen on validation clips: both splits are trained on
    assert metrics["train_clips"] == len(split.train) + len(split.val)
    video = torch.load(run / "features_i3d_temporal.pt", weights_only=True)
    frames = torch.load(run / "features_lite0_odd_frames.pt", weights_only=True)
    assert video["augmented"].shape[1:] == (6, 2, 1024)  # six views, a step per eight frames
    assert frames["augmented"].shape[1:] == (6, 8, 1280)  # the same views' eight odd frames

    model, _ = load_checkpoint(run)
    kinetics = round_conv_weights(i3d_kinetics400()).state_dict()
    imagenet = torch.load(default_weights_path(), weights_only=True)
    assert all(torch.equal(v, kinetics[k]) for k, v in model.video.encoder.state_dict().items())
    assert all(torch.equal(v, imagenet[k]) for k, v in model.frames.encoder.state_dict().items())

    entry = export_classifier(run, tmp_path / "models", SHARED_DATA)
    assert entry["input"]["frames"] == 16 and entry["input"]["mean"] == [0.5, 0.5, 0.5]
    assert entry["metrics"]["onnx_parity_max_abs_diff"] <= 1e-4
    graph = onnx.load(str(tmp_path / "models" / entry["file"])).graph
    weights = {i.name: i for i in graph.initializer}
    nodes = list(all_nodes(graph))
    floats = [weights.get(n.input[1]) for n in nodes if n.op_type == "Conv"]
    large = [w for w in floats if w is not None and np.prod(w.dims) >= 4096]
    int8 = [weights[n.input[0]] for n in nodes if n.op_type == "DequantizeLinear"]
    # I3D runs inside the cascade's If, on the clips Lite0 is not sure of
    (cascade,) = [n for n in graph.node if n.op_type == "If"]
    branches = {a.name: {n.op_type for n in all_nodes(a.g)} for a in cascade.attribute}
    assert "Conv" in branches["then_branch"] and "Conv" not in branches["else_branch"]
    assert model.frame_exit.min_top1 == EXIT_MIN_TOP1 and model.frame_exit.threshold.isfinite()
    # I3D's 3D convolutions stored as int8, as torch rounded them; Lite0's 2D ones float32
    assert int8 and all(len(w.dims) == 5 for w in int8)
    assert large and all(len(w.dims) == 4 for w in large)
    assert entry["metrics"]["file_size_bytes"] < 45e6  # I3D int8, Lite0 float32

    study = fusion_study(SHARED_DATA, run, max_clips=3)  # from the run's cached features
    assert set(study["arms"]) == {"i3d_temporal", "lite0_odd_frames", "fusion"}
    assert study["clips"] == len(split.train) + len(split.val)
    assert json.loads((run / "fusion_study.json").read_text()) == study

    cascade = cascade_study(SHARED_DATA, run, max_clips=3)  # the same cache and log-probs
    assert cascade["fusion"] == study["arms"]["fusion"]
    assert cascade["frame_distance_threshold"] == pytest.approx(
        float(model.frame_exit.threshold), abs=1e-6
    )
    assert set(cascade["left_out_exits"]) == set(study["arms"]["fusion"]["per_class"])

    # its open-set floor: the quantile of the two branches' averaged out-of-fold probabilities
    cv = open_set_cv(SHARED_DATA, run, entry["name"], tmp_path / "models", max_clips=3)
    video, frames = (
        torch.load(run / f"log_probs_{name}.pt", weights_only=True)
        for name in ("i3d_temporal", "lite0_odd_frames")
    )
    top1 = torch.cat(
        [torch.softmax(lp, 1).max(1).values for lp in heads_averaged(video, frames).values()]
    )
    assert cv["min_top1_probability"] == round(float(np.quantile(top1.numpy(), 0.025)), 6)
