"""A CycleGAN trained by time budget, distilled into a student, and the bundle that carries it."""

from __future__ import annotations

import numpy as np
import pytest

from tests.utils.data import SHARED_DATA
from training.styles.bundle import (
    read_bundle,
    read_heldout_outputs,
    write_bundle,
    write_heldout_outputs,
)
from training.styles.data import STYLES, load_content, load_images
from training.styles.distillation import (
    DistillOptions,
    PairSampler,
    run_distillation,
    teacher_cache_name,
    teacher_pairs,
)
from training.styles.pipeline import export_student
from training.styles.teacher import CycleGANTeacher
from training.styles.train_cyclegan import CycleGANOptions, _lr_factor, run_cyclegan


def test_time_budget_schedule_holds_then_decays_to_zero():
    options = CycleGANOptions(style="x", data=SHARED_DATA, run_dir=SHARED_DATA, time_budget_s=100)
    assert [_lr_factor(options, 0, t) for t in (0, 50, 75, 100)] == [1.0, 1.0, 0.5, 0.0]


@pytest.fixture(scope="module")
def tiny_cyclegan(tmp_path_factory):
    root = tmp_path_factory.mktemp("cyclegan")
    options = CycleGANOptions(
        style="cezanne",
        data=SHARED_DATA,
        run_dir=root / "runs" / "cezanne",
        cache_dir=root / "cache",
        ngf=4,
        n_blocks=1,
        ndf=8,
        size=32,
        epoch_iterations=2,
        batch_size=2,
        pool_size=3,
        threads=2,
        time_budget_s=2.0,
        limit=2,
    )
    return options, run_cyclegan(options)


def test_time_budget_run_stops_at_its_budget_and_records_the_device(tiny_cyclegan):
    options, result = tiny_cyclegan
    assert result["finished"] and result["iterations"] >= 1
    assert 2.0 <= result["train_time_s"] < 30
    assert result["batch_size"] == 2 and result["device"] == "cpu"
    assert list(options.run_dir.glob("samples_epoch*.png"))


def test_cyclegan_run_is_a_teacher_for_a_student(tiny_cyclegan, tmp_path):
    cyclegan, trained = tiny_cyclegan
    teacher = CycleGANTeacher.from_checkpoint(cyclegan.run_dir / "last.pt")
    assert teacher.record["iterations"] == trained["iterations"]
    frames = load_content(SHARED_DATA, cyclegan.cache_dir, limit=2).heldout_frames[:3]
    stylised = teacher.stylise_many(frames)
    assert stylised.shape == frames.shape and stylised.dtype == np.uint8

    options = DistillOptions(
        style="cezanne",
        data=SHARED_DATA,
        run_dir=tmp_path / "student",
        cache_dir=cyclegan.cache_dir,
        teacher_checkpoint=str(cyclegan.run_dir / "last.pt"),
        student="tiny",
        batch_size=2,
        crop=32,
        threads=2,
        time_budget_s=1.0,
        limit=2,
    )
    result = run_distillation(options)
    assert result["finished"] and result["iterations"] >= 1
    assert teacher_cache_name(options) == "teacher_cezanne_cyclegan-cezanne_2.npz"

    entry = export_student(options, tmp_path / "models")
    training = entry["training"]
    assert training["teacher"].startswith("CycleGAN generator trained here (ngf 4, 1 residual")
    assert f"{trained['iterations']} iterations" in training["teacher"]
    assert "teacher_vector" not in training
    assert training["teacher_training"]["options"]["time_budget_s"] == 2.0


def test_bundle_carries_what_training_reads(tmp_path):
    bundle = write_bundle(SHARED_DATA, tmp_path / "cache_here", tmp_path / "bundle", limit=2)
    here = load_content(SHARED_DATA, tmp_path / "cache_here", limit=2)

    data_root = read_bundle(bundle, tmp_path / "cache_there")
    there = load_content(data_root, tmp_path / "cache_there")  # from the rebuilt cache
    for name in ("photos", "train_frames", "heldout_frames"):
        a, b = getattr(here, name), getattr(there, name)
        assert a.shape == b.shape and len(a) > 0
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 4  # JPEG, not a different image
    for style in STYLES:
        assert load_images(data_root / "styles" / style).shape == (2, 256, 256, 3)
    assert (bundle / "efficientnet_lite0_fp16.pth").stat().st_size < 12_000_000


def test_heldout_only_teacher_cache_serves_evaluation_but_not_training(tmp_path):
    content = load_content(SHARED_DATA, tmp_path / "cache", limit=2)
    options = DistillOptions(
        style="cezanne",
        data=SHARED_DATA,
        run_dir=tmp_path / "run",
        cache_dir=tmp_path / "cache",
        teacher_checkpoint="runs/gpu/cyclegan/cezanne/last.pt",
        limit=2,
    )
    full = tmp_path / "full.npz"
    outputs = 255 - content.heldout_frames
    np.savez(full, photos=content.photos, train_frames=content.train_frames, heldout_frames=outputs)
    folder = write_heldout_outputs(full, tmp_path / "heldout")
    read_heldout_outputs(folder, tmp_path / "cache" / teacher_cache_name(options))

    pairs = teacher_pairs(options)  # no checkpoint needed: the cache is there
    assert pairs.teacher.heldout_frames.shape == outputs.shape
    assert np.abs(pairs.teacher.heldout_frames.astype(int) - outputs).mean() < 4
    with pytest.raises(ValueError, match="held-out outputs only"):
        PairSampler(pairs, crop=32, seed=0)
