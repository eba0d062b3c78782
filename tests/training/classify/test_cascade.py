"""The default's cascade: Lite0 answers the clips it is sure of, I3D joins for the others."""

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from training.classify.cascade_onnx import export_cascade_onnx
from training.classify.int8_activations import is_quantised, quantise_cascade_video
from training.classify.models.i3d_effnet_temporal import (
    FrameExit,
    I3DEffNetTemporal,
    cascade_exits,
    lite0_frames,
)
from training.classify.models.i3d_temporal import I3D_CLIP_SPEC
from training.classify.models.registry import build_model
from training.classify.open_set import OpenSetModel, class_distance


def test_a_clip_exits_only_when_lite0_is_sure_and_near_a_known_class() -> None:
    log_probs = torch.log(torch.tensor([[0.8, 0.1, 0.1], [0.8, 0.1, 0.1], [0.5, 0.3, 0.2]]))
    distance = torch.tensor([1.0, 3.0, 1.0])

    exits = cascade_exits(log_probs, distance, min_top1=0.75, threshold=2.0)

    assert exits.tolist() == [True, False, False]


@pytest.fixture(scope="module")
def cascade() -> tuple[I3DEffNetTemporal, OpenSetModel, torch.Tensor]:
    """Untrained heads on 3 classes; the exit limit set so that some of 4 clips exit."""
    torch.manual_seed(0)
    model = build_model("i3d_effnet_temporal", 3).eval()
    clips = torch.rand(4, 3, 16, 224, 224) * 2 - 1
    with torch.no_grad():
        frame_log_probs, frame_embedding = model.frames.logits_and_ood_embedding(
            lite0_frames(clips)
        )
        _, video_embedding = model.video.logits_and_ood_embedding(clips)
    targets = [0, 1, 2, 0, 0, 1, 2, 0]

    def fitted(embedding: torch.Tensor):
        return class_distance(torch.cat([embedding, embedding + 0.01]), targets)

    top1 = frame_log_probs.softmax(1).max(1).values
    model.frame_exit = FrameExit(
        fitted(frame_embedding), threshold=1e9, distance_scale=0.5, min_top1=float(top1.median())
    )
    return model, OpenSetModel(model, fitted(video_embedding)).eval(), clips


@torch.no_grad()
def test_exiting_clips_get_lite0_alone_and_the_others_both_branches(cascade) -> None:
    model, wrapped, clips = cascade
    frame_log_probs, frame_embedding = model.frames.logits_and_ood_embedding(lite0_frames(clips))
    exits, frame_distance = model.frame_exit(frame_log_probs, frame_embedding)
    assert 0 < int(exits.sum()) < len(clips)

    log_probs, distance = wrapped(clips)

    fused, embedding = model.logits_and_ood_embedding(clips)
    torch.testing.assert_close(log_probs[exits], frame_log_probs[exits])
    torch.testing.assert_close(log_probs[~exits], fused[~exits])
    torch.testing.assert_close(distance[exits], frame_distance[exits])
    # I3D ran on fewer clips at once here: the same up to float rounding, which this tight
    # fake class fit magnifies in distances
    close = {"atol": 1e-3, "rtol": 1e-2}
    torch.testing.assert_close(distance[~exits], wrapped.distance(embedding)[~exits], **close)
    # a clip's answer does not depend on the clips batched with it
    for i in range(len(clips)):
        alone_log_probs, alone_distance = wrapped(clips[i : i + 1])
        torch.testing.assert_close(alone_log_probs[0], log_probs[i], **close)
        torch.testing.assert_close(alone_distance[0], distance[i], **close)


def test_one_onnx_file_answers_as_torch_does_on_both_paths(cascade, tmp_path: Path) -> None:
    model, wrapped, clips = cascade
    path = tmp_path / "cascade.onnx"
    export_cascade_onnx(model, wrapped.distance, I3D_CLIP_SPEC, path, int8_weights=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected_log_probs, expected_distance = wrapped(clips)

    for start, stop in [(0, len(clips)), *((i, i + 1) for i in range(len(clips)))]:
        batch = {"clip": clips[start:stop].numpy()}
        log_probs, distance = session.run(["logits", "ood_distance"], batch)
        np.testing.assert_allclose(log_probs, expected_log_probs[start:stop].numpy(), atol=1e-4)
        np.testing.assert_allclose(distance, expected_distance[start:stop].numpy(), atol=1e-3)


def test_the_i3d_part_runs_in_int8_and_the_lite0_answers_stay_exact(cascade, tmp_path) -> None:
    model, wrapped, clips = cascade
    path = tmp_path / "cascade.onnx"
    export_cascade_onnx(model, wrapped.distance, I3D_CLIP_SPEC, path, int8_weights=True)
    float_file = onnx.load(str(path))
    calibration = [clips[i : i + 1].numpy() for i in range(len(clips))]

    assert quantise_cascade_video(path, calibration)
    assert not quantise_cascade_video(path, calibration)  # once is enough

    quantised = onnx.load(str(path))
    assert is_quantised(quantised) and not is_quantised(float_file)
    before, after = (
        ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        for m in (float_file, quantised)
    )
    batch = {"clip": clips.numpy()}
    (expected, expected_distance), (actual, actual_distance) = (
        s.run(["logits", "ood_distance"], batch) for s in (before, after)
    )
    exits = model.frame_exit(*model.frames.logits_and_ood_embedding(lite0_frames(clips)))[0]
    exits = exits.numpy()
    np.testing.assert_array_equal(actual[exits], expected[exits])  # I3D did not run for these
    np.testing.assert_array_equal(actual_distance[exits], expected_distance[exits])
    np.testing.assert_allclose(actual[~exits], expected[~exits], atol=0.1)
