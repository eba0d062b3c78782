"""Students: size budget, a smoke distillation run + export, and the shipped ONNX files."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from service.contract.manifest import sha256_of
from tests.utils.data import REPO_ROOT, SHARED_DATA
from training.styles.distillation import (
    DistillOptions,
    average_students,
    load_student,
    run_distillation,
)
from training.styles.export import export_style_onnx, parity
from training.styles.metrics import count_gmac
from training.styles.models.student import student_cpu, student_small, student_tiny
from training.styles.pipeline import compare_on_training_frames, export_student

EXPORTED = REPO_ROOT / "exported_models"
SHIPPED_STYLES = ("vangogh", "ukiyoe", "monet", "cezanne")


def test_shipped_student_size_is_within_budget():
    model = student_small()
    assert count_gmac(model, 256, 256) <= 3.0
    x = torch.rand(1, 3, 240, 320)
    with torch.no_grad():
        y = model.eval()(x)
    assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 1


def test_distillation_smoke_step_resume_and_export(tmp_path):
    options = DistillOptions(
        style="cezanne",
        data=SHARED_DATA,
        run_dir=tmp_path / "run",
        cache_dir=tmp_path / "cache",
        teacher_vector="painting:00010.jpg",
        student="tiny",
        iterations=2,
        batch_size=2,
        crop=32,
        w_style=1.0,
        w_adversarial=0.1,
        threads=2,
        checkpoint_every=1,
        keep_snapshots=True,
        time_limit_s=1e-9,
        limit=2,
    )
    first = run_distillation(options)
    assert first["iterations"] == 1 and not first["finished"]
    options.time_limit_s = 0.0
    result = run_distillation(options)
    assert result["iterations"] == 2 and result["finished"]
    assert {"pixel", "perceptual", "style", "adversarial", "critic"} <= set(result["losses"])
    saved = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    assert set(saved["critic"]) == {"net", "optimiser"}  # the critic resumes too
    snapshots = sorted((tmp_path / "run" / "snapshots").iterdir())
    assert [p.name for p in snapshots] == ["iter_000001.pt", "iter_000002.pt"]
    assert torch.load(snapshots[0], weights_only=False)["iteration"] == 1
    assert 0 < result["heldout"]["ssim_vs_teacher"] <= 1

    out = tmp_path / "models"
    entry = export_student(options, out)
    assert entry["file"] == "styles/cezanne.onnx" and entry["sha256"] == sha256_of(
        out / entry["file"]
    )
    assert entry["training"]["iterations"] == 2
    assert "PatchGAN critic vs the paintings (w 0.1)" in entry["training"]["recipe"]
    for key in (
        "fps_320x240",
        "psnr_vs_teacher",
        "ssim_vs_teacher",
        "kid_output_vs_paintings",
        "gmac_256",
    ):
        assert key in entry["metrics"]
    assert json.loads((out / "manifest.json").read_text())["styles"][0]["name"] == "cezanne"
    snapshot = export_student(options, tmp_path / "from_snapshot", snapshots[0])["training"]
    assert (
        snapshot["iterations"] == 1 and "iteration 1 of a 2-iteration run" in snapshot["snapshot"]
    )

    # A fine-tune from that run: its record tells both runs, and hand-written notes survive.
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["styles"][0]["training"]["teacher_vector_selection"] = "picked by hand"
    (out / "manifest.json").write_text(json.dumps(manifest))
    tuned = dataclasses.replace(
        options,
        run_dir=tmp_path / "tuned",
        init_from=str(tmp_path / "run" / "last.pt"),
        iterations=1,
        w_style=5.0,
        w_adversarial=0.0,
    )
    assert run_distillation(tuned)["finished"]
    training = export_student(tuned, out)["training"]
    assert training["iterations"] == 3 and training["fine_tuned_from"] == tuned.init_from
    assert "for 2 iterations, then 1 more from there with:" in training["recipe"]
    assert training["recipe"].endswith(
        "Gram style loss vs the painter's set (w 5.0); Adam 0.002, batch 2, random 32px crops"
    )
    assert training["teacher_vector_selection"] == "picked by hand"

    # Two seeds of that fine-tune, averaged: the mean of their weights is what ships.
    seed1 = dataclasses.replace(tuned, run_dir=tmp_path / "tuned_s1", seed=1)
    assert run_distillation(seed1)["finished"]
    average_students([tuned.run_dir, seed1.run_dir], tmp_path / "soup")
    a, b = (load_student(d / "last.pt")[0].state_dict() for d in (tuned.run_dir, seed1.run_dir))
    averaged = load_student(tmp_path / "soup" / "last.pt")[0].state_dict()
    assert not torch.equal(a["head.weight"], b["head.weight"])
    assert torch.allclose(averaged["head.weight"], (a["head.weight"] + b["head.weight"]) / 2)
    soup = export_student(dataclasses.replace(tuned, run_dir=tmp_path / "soup"), out)
    assert soup["training"]["averaged_from"] == [str(tuned.run_dir), str(seed1.run_dir)]
    assert "; 2 runs (seeds 0, 1) with their weights averaged" in soup["training"]["recipe"]

    # A fine-tune may start from the shipped ONNX file: its weights, and its manifest record.
    shipped = out / "styles" / "cezanne.onnx"
    from_onnx, _ = load_student(shipped)
    for name, value in averaged.items():
        assert torch.allclose(from_onnx.state_dict()[name], value), name
    onward = dataclasses.replace(
        tuned,
        run_dir=tmp_path / "onward",
        init_from=str(shipped),
        w_pixel=0.0,
        perceptual_target="content",
    )
    assert run_distillation(onward)["finished"]
    record = export_student(onward, tmp_path / "onward_models")["training"]
    assert record["fine_tuned_from"] == f"{shipped} as shipped with sha256 {soup['sha256']}"
    assert record["iterations"] == soup["training"]["iterations"] + 1
    assert (
        "then 1 more from there with: distillation: pixel L1 (w 0.0) + EfficientNet-Lite0 "
        "perceptual to the content image (w 0.01)" in record["recipe"]
    )
    with pytest.raises(ValueError, match="perceptual_target is 'teacher' or 'content'"):
        run_distillation(dataclasses.replace(onward, perceptual_target="painting"))

    candidates = [options.run_dir, tuned.run_dir, snapshots[0]]
    compared = compare_on_training_frames(
        "cezanne", candidates, SHARED_DATA, options.cache_dir, limit=2, frames=4
    )
    runs = compared["runs"]
    assert list(runs) == [str(c) for c in candidates]
    for run in runs.values():
        assert set(run["by_painter"]) == {"vangogh", "ukiyoe", "monet", "cezanne"}
        assert all(np.isfinite(v) for v in run["by_painter"].values())
        assert run["kid"] == run["by_painter"]["cezanne"]
        assert run["by_painter"][run["nearest"]] == min(run["by_painter"].values())
        assert 0 < run["content_ssim"] <= 1
    assert compared["chosen"] in runs


def test_cpu_student_exports_without_batch_norm_or_padding_and_trains_on_from_the_file(tmp_path):
    model = student_cpu()
    with torch.no_grad():  # norms away from the identity, as after training
        for module in model.modules():
            if isinstance(module, torch.nn.InstanceNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    model.eval()
    assert count_gmac(model, 240, 320) < 0.65 * count_gmac(student_small(), 240, 320)

    path = tmp_path / "cpu.onnx"
    export_style_onnx(model, path)
    operators = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert not operators & {"BatchNormalization", "Pad"}, operators
    norms = [n for n in onnx.load(str(path)).graph.node if n.op_type == "InstanceNormalization"]
    assert len(norms) == model.config.blocks  # one per trunk block, at 1/4 resolution only
    assert parity(model, path) < 1e-4  # folding the norms changed nothing

    reloaded, state = load_student(path)
    assert state["config"]["layout"] == "cpu"
    x = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        assert torch.allclose(reloaded(x), model(x), atol=1e-5)
    assert isinstance(reloaded.encoder[0].bn, torch.nn.BatchNorm2d)  # trainable again


def test_redistilling_a_shipped_student_keeps_its_lineage(tmp_path):
    shipped = EXPORTED / "styles" / "vangogh.onnx"
    (entry,) = [
        s
        for s in json.loads((EXPORTED / "manifest.json").read_text())["styles"]
        if s["name"] == "vangogh"
    ]
    options = DistillOptions(
        style="vangogh",
        data=SHARED_DATA,
        run_dir=tmp_path / "run",
        cache_dir=tmp_path / "cache",
        teacher_onnx=str(shipped),
        student="cpu",
        iterations=2,
        batch_size=2,
        crop=32,
        threads=2,
        limit=2,
    )
    result = run_distillation(options)
    assert result["finished"] and 0 < result["heldout"]["ssim_vs_teacher"] <= 1
    assert sha256_of(tmp_path / "run" / "teacher.onnx") == entry["sha256"]

    exported = export_student(options, tmp_path / "models")
    training = exported["training"]
    assert training["redistilled_from"] == f"{shipped} as shipped with sha256 {entry['sha256']}"
    assert training["teacher"] == entry["training"]["teacher"]  # the original teacher
    assert training["recipe"].startswith(entry["training"]["recipe"])
    assert "re-distilled into the CPU layout with: distillation: pixel L1" in training["recipe"]
    assert training["iterations"] == entry["training"]["iterations"] + 2

    # A fine-tune of that run matching the teacher's texture image by image: the lineage once.
    textured = dataclasses.replace(
        options,
        run_dir=tmp_path / "textured",
        init_from=str(options.run_dir),
        iterations=1,
        w_style=2.0,
        style_target="teacher",
    )
    assert "style" in run_distillation(textured)["losses"]
    record = export_student(textured, tmp_path / "models")["training"]
    assert record["recipe"].count(entry["training"]["recipe"]) == 1
    assert record["recipe"].endswith(
        "Gram style loss vs the teacher's output, image by image (w 2.0); Adam 0.002, batch 2, "
        f"random 32px crops, 1 iterations, to match the output of the student {shipped} as "
        f"shipped with sha256 {entry['sha256']}"
    )
    assert record["iterations"] == training["iterations"] + 1


def test_tiny_student_trains_on_a_fixed_pair():
    # The loss must go down on one repeated pair: the wiring (sigmoid output, optimiser) works.
    torch.manual_seed(0)
    model = student_tiny()
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(20):
        loss = torch.nn.functional.l1_loss(model(x), y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss))
    assert losses[-1] < losses[0]


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads((EXPORTED / "manifest.json").read_text())


@pytest.mark.parametrize("name", SHIPPED_STYLES)
def test_shipped_student_onnx(manifest, name):
    (entry,) = [s for s in manifest["styles"] if s["name"] == name]
    path = EXPORTED / entry["file"]
    assert path.stat().st_size <= 10 * 1024 * 1024
    assert sha256_of(path) == entry["sha256"]
    assert entry["metrics"]["gmac_256"] <= 3.0
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((1, 3, 240, 320), dtype=np.float32)
    y = session.run([entry["output_name"]], {entry["input_name"]: x})[0]
    assert y.shape == (1, 3, 240, 320) and y.dtype == np.float32
    assert y.min() >= 0.0 and y.max() <= 1.0


def test_shipped_arbitrary_style_files(manifest):
    arbitrary = manifest["arbitrary_style"]
    assert sha256_of(EXPORTED / arbitrary["predict_file"]) == arbitrary["predict_sha256"]
    assert sha256_of(EXPORTED / arbitrary["transform_file"]) == arbitrary["transform_sha256"]
    assert (EXPORTED / "styles" / "LICENSE-NOTE").exists()


def test_unknown_teacher_vector_spec_is_refused():
    from training.styles.teacher import teacher_vector

    with pytest.raises(ValueError, match="unknown teacher vector spec 'median'"):
        teacher_vector(None, SHARED_DATA / "styles" / "cezanne", "median")
