"""The per-frame encoder of an exported model rewritten to see two frames at a time: the same
outputs, chunks that run one after another, and clear refusals where the graph does not fit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from service.contract.manifest import EncoderEntry, load_manifest_content, sha256_of
from tests.utils.data import SHARED_DATA
from training.classify.export import chunk_exported_encoders
from training.classify.frame_chunks import (
    CHUNK_PREFIX,
    ChunkingError,
    encode_in_chunks,
    is_chunked,
)

REPO_ROOT = Path(__file__).resolve().parents[3]
FRAMES = 8


class TinyTemporal(nn.Module):
    """effnet_temporal's shape in small: frames folded into the batch, a trunk, a reshape to
    (clips, frames, ...) and back (frame_maps, then the top), pooled features, a temporal head,
    and the features' mean over frames as a second output (the open-set embedding)."""

    def __init__(self, also_maps: bool = False) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU6())
        self.top = nn.Sequential(nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU6())
        self.head = nn.Linear(16, 4)
        self.also_maps = also_maps

    def forward(self, clip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, channels, frames, height, width = clip.shape
        images = clip.transpose(1, 2).reshape(batch * frames, channels, height, width)
        maps = self.trunk(images)
        maps = maps.reshape(batch, frames, *maps.shape[1:])
        flat = maps.reshape(batch * frames, *maps.shape[2:])
        features = self.top(flat).mean((2, 3)).reshape(batch, frames, 16)
        embedding = features.mean(1)
        if self.also_maps:  # a value of the encoder's inside read outside it
            embedding = embedding + maps.mean((1, 2, 3, 4))[:, None]
        return self.head(features).mean(1), embedding


def exported(model: nn.Module, path: Path) -> onnx.ModelProto:
    torch.manual_seed(0)
    for parameter in model.parameters():
        nn.init.normal_(parameter, std=0.3)
    torch.onnx.export(
        model.eval(),
        (torch.zeros(2, 3, FRAMES, 32, 32),),
        str(path),
        input_names=["clip"],
        output_names=["logits", "embedding"],
        dynamic_axes={name: {0: "batch"} for name in ("clip", "logits", "embedding")},
        opset_version=17,
        dynamo=False,
    )
    return onnx.load(str(path))


def run(model: onnx.ModelProto, clips: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"clip": clips})


@pytest.mark.parametrize("clips", [1, 3])
def test_chunked_outputs_equal_the_original(tmp_path: Path, clips: int) -> None:
    original = exported(TinyTemporal(), tmp_path / "tiny.onnx")
    chunked = encode_in_chunks(original, FRAMES, chunk=2)
    assert is_chunked(chunked) and not is_chunked(original)

    inputs = np.random.default_rng(clips).random((clips, 3, FRAMES, 32, 32), dtype=np.float32)
    for before, after in zip(run(original, inputs), run(chunked, inputs), strict=True):
        np.testing.assert_allclose(after, before, rtol=0, atol=1e-6)


def test_each_chunk_waits_for_the_one_before(tmp_path: Path) -> None:
    chunked = encode_in_chunks(exported(TinyTemporal(), tmp_path / "tiny.onnx"), FRAMES, 2)
    producer = {out: node for node in chunked.graph.node for out in node.output}

    def upstream(value: str) -> set[str]:
        seen, pending = set(), [value]
        while pending:
            node = producer.get(pending.pop())
            if node is not None and node.name not in seen:
                seen.add(node.name)
                pending.extend(node.input)
        return seen

    for k in range(1, FRAMES // 2):
        # the chunk's frames are sliced only once the previous chunk's features exist
        needed = upstream(f"{CHUNK_PREFIX}{k}/images")
        assert any(name.startswith(f"{CHUNK_PREFIX}{k - 1}/") for name in needed)
    convolutions = [n for n in chunked.graph.node if n.op_type == "Conv"]
    assert len(convolutions) == 2 * FRAMES // 2  # the encoder's two, once per chunk
    assert len(chunked.graph.initializer) <= len(
        onnx.load(str(tmp_path / "tiny.onnx")).graph.initializer
    )  # weights shared by the copies, not copied


def test_graphs_that_do_not_fit_are_refused(tmp_path: Path) -> None:
    tiny = exported(TinyTemporal(), tmp_path / "tiny.onnx")
    with pytest.raises(ChunkingError, match="do not split"):
        encode_in_chunks(tiny, FRAMES, chunk=3)
    leaky = exported(TinyTemporal(also_maps=True), tmp_path / "leaky.onnx")
    with pytest.raises(ChunkingError, match="read outside"):
        encode_in_chunks(leaky, FRAMES, chunk=2)


def test_older_exports_are_rewritten_once_and_their_checksums_recorded(tmp_path: Path) -> None:
    encoder = exported(TinyTemporal(), tmp_path / "tiny.onnx")
    (tmp_path / "encoders").mkdir()
    onnx.save(encoder, str(tmp_path / "encoders" / "tiny.onnx"))
    spec = {"frames": FRAMES, "resize_short": 32, "crop": 32, "mean": [0.5] * 3, "std": [0.5] * 3}
    entry = EncoderEntry(
        name="tiny",
        display_name="tiny",
        file="encoders/tiny.onnx",
        sha256=sha256_of(tmp_path / "encoders" / "tiny.onnx"),
        input_name="clip",
        output_name="logits",
        feature_dim=4,
        input=spec,
    )
    manifest = {"schema_version": 1, "styles": [], "encoders": [entry.model_dump(mode="json")]}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))

    first = chunk_exported_encoders(tmp_path, SHARED_DATA)
    assert first["tiny"]["rewritten"] and first["tiny"]["max_abs_diff"] <= 1e-6
    (recorded,) = load_manifest_content(tmp_path).encoders
    assert recorded.sha256 == sha256_of(tmp_path / "encoders" / "tiny.onnx") != entry.sha256
    assert chunk_exported_encoders(tmp_path, SHARED_DATA) == {"tiny": {"rewritten": False}}


def test_the_shipped_frame_encoders_see_two_frames_at_a_time() -> None:
    models = REPO_ROOT / "exported_models"
    content = load_manifest_content(models)
    files = [c.file for c in content.classifiers if c.family == "effnet_temporal"]
    files += [e.file for e in content.encoders]
    assert files
    for file in files:
        assert is_chunked(onnx.load(str(models / file), load_external_data=False)), file
