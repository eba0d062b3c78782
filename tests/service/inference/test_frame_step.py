"""A model trained on consecutive frames is served consecutive frames, whole and per window.

The model here is a real ONNX graph whose scores say which frames it was given: each score is
the brightness of one input frame (and a last one is 0), and frame i of the video is grey level
20 + 4 i, so log(p_t / p_last) * 255 gives back the index of the frame fed at position t.
"""

import hashlib
import math
from pathlib import Path

import av
import numpy as np
import onnx
from onnx import TensorProto, helper

from service.contract.manifest import ClassifierEntry
from service.inference.classifier import classify, load_classifier
from service.video.decode import DecodeLimits

FRAMES, SIZE, FPS, VIDEO_FRAMES = 4, 8, 25, 50


def _brightness_model(path: Path) -> None:
    """(N, 3, 4, 8, 8) -> (N, 5): each frame's mean, then a 0."""
    pads = helper.make_tensor("pads", TensorProto.INT64, [4], [0, 0, 0, 1])
    axes = helper.make_tensor("axes", TensorProto.INT64, [3], [1, 3, 4])
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["clip", "axes"], ["means"], keepdims=0),
            helper.make_node("Pad", ["means", "pads"], ["logits"]),
        ],
        "brightness",
        [helper.make_tensor_value_info("clip", TensorProto.FLOAT, [None, 3, FRAMES, SIZE, SIZE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [None, FRAMES + 1])],
        initializer=[pads, axes],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.save(model, path)


def _numbered_video(path: Path) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv444p"
        for i in range(VIDEO_FRAMES):
            grey = np.full((48, 64, 3), 20 + 4 * i, np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(grey, format="rgb24")))
        out.mux(stream.encode(None))
    return path


def _fed_frames(predictions) -> list[int]:
    score = {p.label: p.score for p in predictions}
    brightness = [math.log(score[f"frame{t}"] / score["zero"]) * 255 for t in range(FRAMES)]
    return [round((b - 20) / 4) for b in brightness]


def test_a_model_with_a_frame_step_sees_frames_that_far_apart_in_the_middle(
    tmp_path: Path,
) -> None:
    _brightness_model(tmp_path / "brightness.onnx")
    entry = ClassifierEntry(
        name="brightness",
        family="test",
        display_name="frame brightness",
        file="brightness.onnx",
        sha256=hashlib.sha256((tmp_path / "brightness.onnx").read_bytes()).hexdigest(),
        input_name="clip",
        output_name="logits",
        input={
            "frames": FRAMES,
            "resize_short": SIZE,
            "crop": SIZE,
            "mean": [0, 0, 0],
            "std": [1, 1, 1],
            "frame_step": 2,
        },
        labels=[f"frame{t}" for t in range(FRAMES)] + ["zero"],
    )
    classifier = load_classifier(tmp_path, entry, intra_op_threads=1)
    video = _numbered_video(tmp_path / "numbered.mkv")

    result = classify(video, classifier, FRAMES + 1, DecodeLimits(), window_s=1.0)

    assert _fed_frames(result.predictions) == [21, 23, 25, 27]  # the middle of 50 frames
    assert [_fed_frames(s.predictions) for s in result.segments] == [
        [9, 11, 13, 15],  # the middle of frames 0-24
        [34, 36, 38, 40],  # the middle of frames 25-49
    ]
