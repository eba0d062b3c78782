"""Style entries in the manifest: contained paths, verified files, one session per style.

Paths stay inside the models folder, files are verified, and a worker builds one session per
style.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from service.contract.manifest import ManifestError, load_manifest
from service.inference.registry import load_registry
from service.inference.styles import StyleEngines, UnknownStyle
from tests.utils.styles import TEST_STYLE


@pytest.fixture
def styles_copy(style_models_dir: Path, tmp_path: Path) -> Path:
    """A writable copy of the models folder with the test styles (links followed)."""
    return Path(shutil.copytree(style_models_dir, tmp_path / "models"))


def _edit_style(folder: Path, **changes: object) -> None:
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    entry = next(s for s in manifest["styles"] if s["name"] == TEST_STYLE)
    entry.update(changes)
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize("file", ["../outside.onnx", "/etc/passwd", "styles//x.onnx", "a/../b"])
def test_a_style_file_outside_the_models_folder_is_refused(styles_copy: Path, file: str) -> None:
    _edit_style(styles_copy, file=file)
    with pytest.raises(ManifestError) as refused:
        load_manifest(styles_copy)
    assert f"'{file}' must be a relative path inside the models folder" in str(refused.value)


def test_a_style_whose_checksum_differs_refuses_to_start(styles_copy: Path) -> None:
    model = styles_copy / "test_styles" / f"{TEST_STYLE}.onnx"
    model.write_bytes(model.read_bytes() + b"\0")
    with pytest.raises(ManifestError, match=rf"^model '{TEST_STYLE}': {model} has sha256 "):
        load_registry(styles_copy, 1)


def test_an_unsupported_value_range_is_refused(styles_copy: Path) -> None:
    _edit_style(styles_copy, io={"layout": "NCHW", "range": [-1, 1]})
    with pytest.raises(ManifestError, match=r"range \[-1.0, 1.0\] is not supported"):
        load_manifest(styles_copy)


def test_a_worker_builds_each_style_once(style_models_dir: Path) -> None:
    engines = StyleEngines(style_models_dir, load_manifest(style_models_dir), threads=1)
    engine = engines.named(TEST_STYLE)
    assert engines.named(TEST_STYLE) is engine
    frames = [np.full((30, 42, 3), 100, np.uint8), np.zeros((30, 42, 3), np.uint8)]
    styled = engine(frames)  # 30 x 42 is no multiple of 4: padded, then cropped back
    assert [f.shape for f in styled] == [(30, 42, 3)] * 2 and styled[0].dtype == np.uint8
    assert not np.array_equal(styled[0], frames[0])

    painting = np.random.default_rng(0).integers(0, 255, (300, 200, 3), np.uint8)
    painted = engines.painting(painting)(frames[:1])
    assert painted[0].shape == (30, 42, 3)
    with pytest.raises(UnknownStyle, match="^unknown style 'nope'; known styles: "):
        engines.named("nope")
