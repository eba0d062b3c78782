"""CycleGAN: published key layout, import to ONNX, and a smoke training run with resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from service.contract.manifest import ClassifierEntry
from tests.utils.data import REPO_ROOT, SHARED_DATA
from training.__main__ import main
from training.styles.models.cyclegan import (
    PatchDiscriminator,
    UnitRangeGenerator,
    clean_published_state_dict,
    cyclegan_generator_compact,
    cyclegan_generator_published,
    load_published_generator,
)
from training.styles.train_cyclegan import CycleGANOptions, run_cyclegan

PUBLISHED_PARAMS = 11_378_179  # ResnetGenerator(3, 3, 64, n_blocks=9), as released


def _published_layout_checkpoint(path: Path, generator: torch.nn.Module) -> dict:
    """Write a state dict the way old published `latest_net_G.pth` files look."""
    state = {f"module.{k}": v.clone() for k, v in generator.state_dict().items()}
    for norm in (
        "model.2",
        "model.5",
        "model.10.conv_block.2",
        "model.18.conv_block.6",
        "model.23",
    ):
        state[f"module.{norm}.running_mean"] = torch.zeros(1)
        state[f"module.{norm}.running_var"] = torch.ones(1)
    torch.save(state, path)
    return state


def test_published_generator_has_the_reference_key_names():
    generator = cyclegan_generator_published()
    keys = list(generator.state_dict())
    assert keys[0] == "model.1.weight" and keys[-1] == "model.26.bias"
    assert "model.10.conv_block.1.weight" in keys and "model.18.conv_block.5.bias" in keys
    assert "model.19.weight" in keys and "model.22.bias" in keys  # the two ConvTranspose layers
    assert len(keys) == 48
    assert sum(p.numel() for p in generator.parameters()) == PUBLISHED_PARAMS


def test_published_layout_loads_strict_after_cleaning(tmp_path):
    source = cyclegan_generator_published()
    _published_layout_checkpoint(tmp_path / "latest_net_G.pth", source)
    raw = torch.load(tmp_path / "latest_net_G.pth", weights_only=True)
    with pytest.raises(RuntimeError):
        cyclegan_generator_published().load_state_dict(raw, strict=True)
    loaded = load_published_generator(raw)
    assert loaded.config.ngf == 64 and loaded.config.n_blocks == 9
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    # One thread: on several, torch's CPU convolutions split their sums differently from call to
    # call (the same module on the same input differed by up to 4e-5), which made this flaky.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            assert torch.equal(loaded(x), source.eval()(x))
    finally:
        torch.set_num_threads(threads)
    assert not any(k.startswith("module.") for k in clean_published_state_dict(raw))


def test_generator_and_discriminator_shapes():
    g = cyclegan_generator_compact(ngf=8, n_blocks=2)
    d = PatchDiscriminator(ndf=8)
    x = torch.rand(1, 3, 64, 96) * 2 - 1
    y = g(x)
    assert y.shape == x.shape and y.abs().max() <= 1
    assert d(y).shape == (1, 1, 6, 10)


def test_import_command_writes_onnx_matching_torch_and_keeps_manifest(tmp_path, capsys):
    source = cyclegan_generator_published()
    _published_layout_checkpoint(tmp_path / "latest_net_G.pth", source)
    out = tmp_path / "models"
    out.mkdir()
    exported = json.loads((REPO_ROOT / "exported_models" / "manifest.json").read_text())
    classifier = exported["classifiers"][0]
    other = {"schema_version": 1, "default_classifier": classifier["name"]}
    (out / "manifest.json").write_text(json.dumps({**other, "classifiers": [classifier]}))

    code = main(
        [
            "cyclegan",
            "import",
            str(tmp_path / "latest_net_G.pth"),
            "--style",
            "vangogh_cyclegan",
            "--out",
            str(out),
            "--skip-fps",
        ]
    )
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["file"] == "styles/vangogh_cyclegan.onnx"

    manifest = json.loads((out / "manifest.json").read_text())
    # the classifier written before is kept as it was
    assert manifest["classifiers"] == [
        ClassifierEntry.model_validate(classifier).model_dump(mode="json")
    ]
    (entry,) = manifest["styles"]
    assert entry["name"] == "vangogh_cyclegan" and entry["io"]["range"] == [0, 1]
    assert entry["metrics"]["params"] == PUBLISHED_PARAMS
    session = ort.InferenceSession(str(out / entry["file"]), providers=["CPUExecutionProvider"])
    x = torch.rand(1, 3, 48, 64)
    with torch.no_grad():
        expected = UnitRangeGenerator(source.eval())(x).numpy()
    got = session.run(None, {entry["input_name"]: x.numpy()})[0]
    assert got.shape == (1, 3, 48, 64)
    assert np.abs(got - expected).max() < 1e-3


def test_cyclegan_smoke_iteration_then_resume(tmp_path):
    options = CycleGANOptions(
        style="cezanne",
        data=SHARED_DATA,
        run_dir=tmp_path / "run",
        cache_dir=tmp_path / "cache",
        ngf=4,
        n_blocks=1,
        ndf=8,
        size=32,
        epochs=1,
        decay_epochs=1,
        epoch_iterations=1,
        pool_size=2,
        threads=2,
        time_limit_s=1e-9,
        limit=2,
    )
    first = run_cyclegan(options)  # stops (resumably) after one iteration
    assert first["iterations"] == 1 and not first["finished"]
    assert (tmp_path / "run" / "samples_epoch001.png").exists()

    options.time_limit_s = 0.0
    second = run_cyclegan(options)
    assert second["iterations"] == 2 and second["finished"]
    saved = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    assert saved["iteration"] == 2 and len(saved["history"]) == 2
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["total_iterations"] == 2
