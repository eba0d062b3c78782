"""Distil a painter's style from a teacher into a compact student.

The teacher is the Magenta arbitrary network with a painter's style vector, or (with
`teacher_checkpoint`) a CycleGAN generator trained on that painter's set, or (with `teacher_onnx`)
a shipped student, to move what it learned into another student layout. Teacher outputs on
photos and UCF101 frames are computed once and cached under `.cache/styles/`.
The student learns them with pixel L1 + perceptual loss on EfficientNet-Lite0 feature maps, plus
(optionally) a Gram style loss against the painter's set. Runs resume from RUN_DIR/last.pt and stop
cleanly at `time_limit_s`, so long runs can be cut into pieces on a shared CPU.

    python -m training distill train --style vangogh --run-dir runs/styles/vangogh
    python -m training distill train --style vangogh --teacher-checkpoint \
        runs/cyclegan/vangogh/last.pt --device cuda --time-budget-s 150
    python -m training distill train --style vangogh --student cpu \
        --teacher-onnx exported_models/styles/vangogh.onnx --run-dir runs/cpu/vangogh
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from tqdm import tqdm

from service.contract.manifest import MANIFEST_NAME, load_manifest_json, sha256_of
from training.checkpoints import LAST, load_state, resume_state, save_checkpoint
from training.efficientnet_lite import default_weights_path, efficientnet_lite0
from training.options import options_json
from training.runs import prepare_run_dir
from training.styles.data import ContentSet, load_content, load_images
from training.styles.export import onnx_stylise
from training.styles.losses import STYLE_MAPS, LiteLosses, PaintingCritic, gram
from training.styles.metrics import psnr, ssim
from training.styles.models.student import (
    ConvBN,
    CpuStudent,
    Student,
    config_dict,
    student_cpu,
    student_from_config,
    student_small,
    student_tiny,
)
from training.styles.teacher import CycleGANTeacher, magenta_teacher, teacher_vector

STUDENT_SIZES = {"small": student_small, "tiny": student_tiny, "cpu": student_cpu}
TEACHER_ONNX = "teacher.onnx"  # the run's own copy of a student ONNX that teaches it


@dataclass
class DistillOptions:
    style: str
    data: Path
    run_dir: Path
    cache_dir: Path = Path(".cache/styles")
    teacher_vector: str = "mean"  # see training.styles.teacher.teacher_vector
    teacher_checkpoint: str = ""  # a CycleGAN checkpoint: the teacher instead of Magenta's network
    teacher_onnx: str = ""  # a style ONNX (a shipped student): re-distil it into another layout
    student: str = "small"
    iterations: int = 1500
    batch_size: int = 4
    crop: int = 192
    lr: float = 2e-3
    w_pixel: float = 1.0
    w_perceptual: float = 0.01  # raw feature MSE is ~50x the pixel L1 at the start
    w_style: float = 0.0
    w_adversarial: float = 0.0  # a PatchGAN critic against the painter's set (least squares)
    # What the perceptual loss compares the output with: the teacher's output (distillation), or
    # the content image itself (Johnson et al.'s content loss: keep the scene, let the style
    # losses alone decide the look, free of the teacher).
    perceptual_target: str = "teacher"
    # What the Gram style loss matches: the painter's set (its mean texture), or the teacher's
    # output image by image (its texture, where pixel and perceptual losses blur it).
    style_target: str = "paintings"
    seed: int = 0
    threads: int = 0
    time_limit_s: float = (
        0.0  # stop (resumably) after this much training time in this call; 0: none
    )
    time_budget_s: float = 0.0  # schedule by training time instead of iterations; 0: iterations
    init_from: str = ""  # a student checkpoint to start from (fine-tuning with other losses)
    device: str = "cpu"
    checkpoint_every: int = 100
    # Also keep every checkpoint as RUN_DIR/snapshots/iter_NNNNNN.pt: adversarial fine-tunes end
    # at an arbitrary point of the critic game, so candidates along the run are compared.
    keep_snapshots: bool = False
    limit: int = 0  # smoke runs: only this many photos / clips
    log: list = field(default_factory=list, repr=False)


@dataclass
class PairSet:
    """Content and teacher output, (N, H, W, 3) uint8 each, for photos and train/held-out frames."""

    content: ContentSet
    teacher: ContentSet


def teacher_cache_file(
    style: str,
    teacher_vector: str = "mean",
    teacher_checkpoint: str = "",
    limit: int = 0,
    teacher_onnx_sha256: str = "",
) -> str:
    """File name of the cached teacher outputs for this style and teacher."""
    if teacher_onnx_sha256:
        spec = "onnx-" + teacher_onnx_sha256[:12]
    elif teacher_checkpoint:
        # runs/cyclegan/<run>/last.pt -> cyclegan-<run>: retraining that run needs a fresh cache.
        spec = "cyclegan-" + Path(teacher_checkpoint).parent.name
    else:
        spec = teacher_vector.replace(":", "-").replace("/", "-")
    return f"teacher_{style}_{spec}_{limit}.npz"


def teacher_cache_name(options: DistillOptions) -> str:
    onnx_sha = sha256_of(teacher_onnx_copy(options)) if options.teacher_onnx else ""
    return teacher_cache_file(
        options.style, options.teacher_vector, options.teacher_checkpoint, options.limit, onnx_sha
    )


def teacher_onnx_copy(options: DistillOptions) -> Path:
    """RUN_DIR/teacher.onnx: the run keeps its own copy of the ONNX teacher, because exporting
    the new student overwrites the shipped file it was taught by."""
    copy = options.run_dir / TEACHER_ONNX
    if not copy.exists():
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(options.teacher_onnx, copy)
        record = shipped_record(Path(options.teacher_onnx))
        (options.run_dir / "teacher.json").write_text(json.dumps(record, indent=2))
    return copy


def shipped_record(path: Path) -> dict:
    """Where a style ONNX came from: its file, sha256 and, when the manifest beside it lists it,
    the training record it shipped with (a new student's lineage)."""
    sha = sha256_of(path)
    record = {"source": str(path), "sha256": sha}
    if (path.parent.parent / MANIFEST_NAME).exists():
        styles = load_manifest_json(path.parent.parent)["styles"]
        for entry in styles:
            if entry["sha256"] == sha:
                record.update(name=entry["name"], training=entry["training"])
    return record


def shipped_name(record: dict) -> str:
    """What training records call a shipped style ONNX (a `shipped_record`)."""
    return f"{record['source']} as shipped with sha256 {record['sha256']}"


def teacher_record(options: DistillOptions) -> dict:
    """How the teacher was made, as the distillation run recorded it (RUN_DIR/teacher.json)."""
    path = options.run_dir / "teacher.json"
    return json.loads(path.read_text()) if path.exists() else {}


def teacher_pairs(options: DistillOptions) -> PairSet:
    """Content images and the teacher's stylisations of them, computed once and cached."""
    content = load_content(options.data, options.cache_dir, limit=options.limit)
    cache = options.cache_dir / teacher_cache_name(options)
    if cache.exists():
        with np.load(cache) as z:
            return PairSet(content, ContentSet(z["photos"], z["train_frames"], z["heldout_frames"]))
    outputs = {}
    if options.teacher_onnx:
        teacher = teacher_onnx_copy(options)
        for name in ("photos", "train_frames", "heldout_frames"):
            outputs[name] = onnx_stylise(teacher, getattr(content, name))
        extra = {"onnx_sha256": sha256_of(teacher)}
    elif options.teacher_checkpoint:
        cyclegan = CycleGANTeacher.from_checkpoint(Path(options.teacher_checkpoint), options.device)
        for name in ("photos", "train_frames", "heldout_frames"):
            outputs[name] = cyclegan.stylise_many(getattr(content, name))
        extra = {"checkpoint": options.teacher_checkpoint}
        options.run_dir.mkdir(parents=True, exist_ok=True)
        (options.run_dir / "teacher.json").write_text(json.dumps(cyclegan.record, indent=2))
    else:
        teacher = magenta_teacher()
        vector = teacher_vector(
            teacher, options.data / "styles" / options.style, options.teacher_vector
        )
        for name in ("photos", "train_frames", "heldout_frames"):
            images = getattr(content, name)
            outputs[name] = (
                np.stack(
                    [
                        teacher.stylise(im, vector)
                        for im in tqdm(images, desc=f"teacher {options.style} {name}")
                    ]
                )
                if len(images)
                else images.copy()
            )
        extra = {"vector": vector}
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **extra, **outputs)
    return PairSet(content, ContentSet(**outputs))


class PairSampler:
    """Random aligned crops (with flips) from photos and training frames."""

    def __init__(self, pairs: PairSet, crop: int, seed: int) -> None:
        self.sources = [
            (pairs.content.photos, pairs.teacher.photos),
            (pairs.content.train_frames, pairs.teacher.train_frames),
        ]
        self.sources = [s for s in self.sources if len(s[0])]
        for content, target in self.sources:
            if len(content) != len(target):
                raise ValueError(
                    f"the teacher cache holds {len(target)} outputs for {len(content)} images "
                    "(a cache with held-out outputs only is for evaluation); delete it and "
                    "rerun with the teacher available"
                )
        self.crop = crop
        self.rng = np.random.default_rng(seed)

    def batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:  # 2 x (B, 3, crop, crop)
        xs, ys = [], []
        for _ in range(size):
            content, target = self.sources[self.rng.integers(len(self.sources))]
            i = self.rng.integers(len(content))
            h, w = content.shape[1:3]
            c = min(self.crop, h, w)
            top, left = self.rng.integers(h - c + 1), self.rng.integers(w - c + 1)
            x = content[i, top : top + c, left : left + c]
            y = target[i, top : top + c, left : left + c]
            if self.rng.random() < 0.5:
                x, y = x[:, ::-1], y[:, ::-1]
            xs.append(np.ascontiguousarray(x))
            ys.append(np.ascontiguousarray(y))

        def to_tensor(images: list[np.ndarray]) -> torch.Tensor:
            return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.0

        return to_tensor(xs), to_tensor(ys)


def stylise_batch(student: Student, images: np.ndarray, batch: int = 8) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, H, W, 3) uint8 through the student (H, W multiples of 4)."""
    out = []
    student.eval()
    device = next(student.parameters()).device
    with torch.no_grad():
        for start in range(0, len(images), batch):
            x = torch.from_numpy(images[start : start + batch]).to(device)
            y = student(x.permute(0, 3, 1, 2).float() / 255.0)
            y = y.clamp(0, 1).mul(255).add(0.5).to(torch.uint8)
            out.append(y.permute(0, 2, 3, 1).cpu().numpy())
    return np.concatenate(out) if out else images.copy()


def agreement(student_out: np.ndarray, teacher_out: np.ndarray) -> dict[str, float]:
    """Mean PSNR (dB) and SSIM of student against teacher over image pairs."""
    return {
        "psnr_vs_teacher": float(
            np.mean([psnr(a, b) for a, b in zip(student_out, teacher_out, strict=True)])
        ),
        "ssim_vs_teacher": float(
            np.mean([ssim(a, b) for a, b in zip(student_out, teacher_out, strict=True)])
        ),
    }


def _checkpoint_state(run: _Run, options: DistillOptions) -> dict:
    """A student checkpoint in the one format (training.checkpoints)."""
    return {
        "model": run.student.state_dict(),
        "optimiser": run.optimiser.state_dict(),
        "config": config_dict(run.student.config),
        "options": options_json(options),
        "iteration": run.iteration,
        "train_time_s": run.train_time_s,
        "history": run.history,
        **({"critic": run.critic.state_dict()} if run.critic else {}),
    }


def load_student(path: Path) -> tuple[Student, dict]:
    """A trained student (evaluation mode) and its checkpoint state.

    `path` is a run folder (its last.pt), a checkpoint, or a shipped student's ONNX file (to
    fine-tune what ships when its training run is not on this machine): its initializers carry
    the student's parameter names.
    """
    if path.is_dir():
        path = path / LAST
    if path.suffix == ".onnx":
        return student_from_onnx(path)
    state = load_state(path)
    student = student_from_config(state["config"])
    student.load_state_dict(state["model"])
    return student.eval(), state


def student_from_onnx(path: Path) -> tuple[Student, dict]:
    """Rebuild a student exported by `training.styles.export` from its ONNX weights."""
    weights = {
        init.name: torch.from_numpy(numpy_helper.to_array(init).copy())
        for init in onnx.load(str(path)).graph.initializer
    }
    if "encoder.0.conv.weight" in weights:
        return _cpu_student_from_weights(weights)
    blocks = {name.split(".")[1] for name in weights if name.startswith("blocks.")}
    c2 = weights["encoder.2.0.weight"].shape[0]
    config = {
        "channels": [weights[f"encoder.{i}.0.weight"].shape[0] for i in range(3)],
        "blocks": len(blocks),
        "expansion": weights["blocks.0.body.0.0.weight"].shape[0] // c2,
    }
    student = student_from_config(config)
    student.load_state_dict(weights)  # strict: every parameter must come from the file
    state = {"model": student.state_dict(), "config": config, "iteration": 0, "train_time_s": 0.0}
    return student.eval(), state


def _cpu_student_from_weights(weights: dict[str, torch.Tensor]) -> tuple[CpuStudent, dict]:
    """A CPU-layout student from its exported (batch-norm-folded) weights, ready to train on."""
    trunk = weights["encoder.1.conv.weight"].shape[0]
    config = {
        "stem": weights["encoder.0.conv.weight"].shape[0],
        "trunk": trunk,
        "decoder": weights["decoder.0.conv.weight"].shape[0],
        "full": weights["out.weight"].shape[1],
        "blocks": len({name.split(".")[1] for name in weights if name.startswith("blocks.")}),
        "expansion": weights["blocks.0.body.0.conv.weight"].shape[0] // trunk,
        "layout": "cpu",
    }
    student = student_from_config(config)
    conv_bns = {name: m for name, m in student.named_modules() if isinstance(m, ConvBN)}
    for name, module in conv_bns.items():
        module.load_folded(weights.pop(f"{name}.conv.weight"), weights.pop(f"{name}.conv.bias"))
    # Everything else (project convs, instance norms, head, out) is exported as trained.
    rest = {k for k in student.state_dict() if k.rsplit(".", 2)[0] not in conv_bns}
    if set(weights) != rest:
        raise ValueError(
            f"weights the CPU-layout student does not have: {sorted(set(weights) - rest)}; "
            f"missing: {sorted(rest - set(weights))}"
        )
    student.load_state_dict(weights, strict=False)
    state = {"model": student.state_dict(), "config": config, "iteration": 0, "train_time_s": 0.0}
    return student.eval(), state


def average_students(run_dirs: list[Path], out_dir: Path) -> dict:
    """Average the weights of runs fine-tuned from one student with different seeds.

    A critic game ends anywhere, so one run's last weights (or its luckiest snapshot) are noise;
    the mean of runs that left the same starting point stays in its basin and is steadier.
    Writes OUT_DIR/last.pt (model, config, summed training time) and the first run's options.
    """
    states = [load_state(Path(d) / LAST) for d in run_dirs]
    configs = {json.dumps(s["config"], sort_keys=True) for s in states}
    if len(configs) != 1:
        raise ValueError(f"runs of different student sizes cannot be averaged: {sorted(configs)}")
    model = {
        name: torch.stack([s["model"][name].float() for s in states]).mean(0)
        for name in states[0]["model"]
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("options.json", "teacher.json", TEACHER_ONNX):  # the last two: if it has them
        if (Path(run_dirs[0]) / name).exists():
            shutil.copyfile(Path(run_dirs[0]) / name, out_dir / name)
    save_checkpoint(
        out_dir / LAST,
        {
            "model": model,
            "config": states[0]["config"],
            "iteration": states[0]["iteration"],
            "train_time_s": sum(s["train_time_s"] for s in states),
            "averaged_from": [str(d) for d in run_dirs],
            "seeds": [s["options"]["seed"] for s in states],
        },
    )
    return {"run_dir": str(out_dir), "averaged_from": [str(d) for d in run_dirs]}


def _progress(options: DistillOptions, iteration: int, train_time_s: float) -> float:
    """How far through the run (0..1): by training time with a time budget, else by iterations."""
    if options.time_budget_s:
        return train_time_s / options.time_budget_s
    return iteration / max(1, options.iterations)


def _lr_at(options: DistillOptions, progress: float) -> float:
    # Constant for the first half, then linear decay to 10 %.
    if progress < 0.5:
        return options.lr
    return options.lr * (1.0 - 0.9 * min(1.0, (progress - 0.5) / 0.5))


@dataclass
class _Run:
    """What a distillation run trains and where it stands; checkpointed, restored on resume."""

    student: Student
    optimiser: torch.optim.Optimizer
    losses: LiteLosses
    grams: list[torch.Tensor] | None
    critic: PaintingCritic | None
    iteration: int = 0
    train_time_s: float = 0.0
    history: list[dict] = field(default_factory=list)


def _build(options: DistillOptions, device: torch.device) -> _Run:
    losses = LiteLosses(efficientnet_lite0(weights=default_weights_path())).to(device)
    grams, critic = None, None
    if options.w_style > 0 or options.w_adversarial > 0:
        paintings = load_images(options.data / "styles" / options.style)
        if options.w_style > 0 and options.style_target == "paintings":
            grams = losses.gram_targets(paintings)
        if options.w_adversarial > 0:
            critic = PaintingCritic(paintings, options.crop, device, options.seed)
    student = STUDENT_SIZES[options.student]().to(device)
    optimiser = torch.optim.Adam(student.parameters(), lr=options.lr)
    return _Run(student, optimiser, losses, grams, critic)


def _resume(run: _Run, options: DistillOptions) -> None:
    """Continue from RUN_DIR/last.pt, or start from `init_from` (fine-tuning), or from scratch."""
    state = resume_state(options.run_dir)
    if state is not None:
        run.student.load_state_dict(state["model"])
        run.optimiser.load_state_dict(state["optimiser"])
        run.iteration, run.train_time_s = state["iteration"], state["train_time_s"]
        run.history = state.get("history", [])
        if run.critic and "critic" in state:
            run.critic.load_state_dict(state["critic"])
    elif options.init_from:
        run.student.load_state_dict(load_student(Path(options.init_from))[0].state_dict())


def _step(run: _Run, x: torch.Tensor, y: torch.Tensor, options: DistillOptions) -> dict:
    """One optimiser step on a batch of (content, teacher output); returns each loss's value."""
    out = run.student(x)
    out_maps = run.losses.maps(out)
    with torch.no_grad():
        target_maps = run.losses.maps(y if options.perceptual_target == "teacher" else x)
    parts = {
        "pixel": torch.nn.functional.l1_loss(out, y),
        "perceptual": run.losses.perceptual(out_maps, target_maps),
    }
    if options.w_style > 0 and options.style_target == "teacher":
        with torch.no_grad():
            if options.perceptual_target == "teacher":
                teacher_maps = target_maps
            else:
                teacher_maps = run.losses.maps(y)
            grams = [gram(teacher_maps[i]) for i in STYLE_MAPS]  # (B, C, C) each
        parts["style"] = run.losses.style(out_maps, grams)
    elif run.grams is not None:
        parts["style"] = run.losses.style(out_maps, run.grams)
    if run.critic is not None:
        parts["adversarial"] = run.critic.generator_loss(out)
    weights = {
        "pixel": options.w_pixel,
        "perceptual": options.w_perceptual,
        "style": options.w_style,
        "adversarial": options.w_adversarial,
    }
    loss = sum(weights[k] * v for k, v in parts.items())
    run.optimiser.zero_grad(set_to_none=True)
    loss.backward()
    run.optimiser.step()
    values = {k: float(v.detach()) for k, v in parts.items()}
    if run.critic is not None:
        values["critic"] = float(run.critic.step(out))
    return values


def _save(run: _Run, options: DistillOptions, running: dict[str, float]) -> None:
    run.history.append(
        {"iteration": run.iteration, "train_time_s": round(run.train_time_s, 1), **running}
    )
    last = options.run_dir / LAST
    save_checkpoint(last, _checkpoint_state(run, options))
    if options.keep_snapshots:
        snapshot = options.run_dir / "snapshots" / f"iter_{run.iteration:06d}.pt"
        snapshot.parent.mkdir(exist_ok=True)
        shutil.copyfile(last, snapshot)
    (options.run_dir / "history.json").write_text(json.dumps(run.history, indent=1))


def _result(run: _Run, options: DistillOptions, pairs: PairSet, running: dict) -> dict:
    result = {
        "style": options.style,
        "iterations": run.iteration,
        "finished": _progress(options, run.iteration, run.train_time_s) >= 1.0,
        "train_time_s": round(run.train_time_s, 1),
        "losses": running,
    }
    if result["finished"]:
        student_out = stylise_batch(run.student, pairs.content.heldout_frames)
        result["heldout"] = {
            "frames": len(student_out),
            **agreement(student_out, pairs.teacher.heldout_frames),
        }
    (options.run_dir / "metrics.json").write_text(json.dumps(result, indent=2))
    return result


def run_distillation(options: DistillOptions) -> dict:
    """Train (or resume) one student; returns the metrics also written to RUN_DIR/metrics.json."""
    if options.perceptual_target not in ("teacher", "content"):
        raise ValueError(
            f"perceptual_target is 'teacher' or 'content', not {options.perceptual_target!r}"
        )
    if options.style_target not in ("paintings", "teacher"):
        raise ValueError(f"style_target is 'paintings' or 'teacher', not {options.style_target!r}")
    prepare_run_dir(options)
    device = torch.device(options.device)
    pairs = teacher_pairs(options)
    run = _build(options, device)
    _resume(run, options)
    sampler = PairSampler(pairs, options.crop, options.seed + run.iteration)
    started, time_before = time.perf_counter(), run.train_time_s
    total = None if options.time_budget_s else options.iterations
    progress = tqdm(total=total, initial=run.iteration, desc=f"distil {options.style}")
    running: dict[str, float] = {}
    run.student.train()
    while _progress(options, run.iteration, run.train_time_s) < 1.0:
        for group in run.optimiser.param_groups:
            group["lr"] = _lr_at(options, _progress(options, run.iteration, run.train_time_s))
        x, y = (t.to(device) for t in sampler.batch(options.batch_size))
        values = _step(run, x, y, options)
        run.iteration += 1
        running = {k: 0.9 * running.get(k, v) + 0.1 * v for k, v in values.items()}
        progress.update(1)
        progress.set_postfix({k: f"{v:.4f}" for k, v in running.items()})
        run.train_time_s = time_before + time.perf_counter() - started
        out_of_time = options.time_limit_s and time.perf_counter() - started > options.time_limit_s
        finished = _progress(options, run.iteration, run.train_time_s) >= 1.0
        if run.iteration % options.checkpoint_every == 0 or finished or out_of_time:
            _save(run, options, running)
        if out_of_time:
            break
    progress.close()
    return _result(run, options, pairs, running)
