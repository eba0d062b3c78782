"""Unpaired CycleGAN training (Zhu et al., 2017): photos and video frames <-> a painter's set.

Least-squares GAN loss, cycle loss (lambda 10), identity loss (0.5 lambda), a pool of 50 fakes
for the discriminators, Adam 2e-4 (beta1 0.5), constant then linear decay to 0. An "epoch" is
`epoch_iterations` iterations (one iteration = both generators and both discriminators, forward
and backward). Resumes from RUN_DIR/last.pt; writes a sample grid PNG per epoch.

With `time_budget_s` the schedule is set by training time instead of iterations: the full
learning rate for the first half of the budget, then linear decay to 0 at its end. That is how a
lent GPU's fixed minutes are spent (`--device cuda --bf16`), whatever its speed turns out to be.

    python -m training cyclegan train --style vangogh --run-dir runs/cyclegan/vangogh --size 128
    python -m training cyclegan train --style vangogh --ngf 64 --n-blocks 9 --size 256 \
        --device cuda --bf16 --batch-size 4 --time-budget-s 300
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from training.checkpoints import LAST, resume_state, save_checkpoint
from training.options import options_json
from training.runs import prepare_run_dir
from training.styles.data import load_content, load_images
from training.styles.models.cyclegan import GeneratorConfig, PatchDiscriminator, cyclegan_generator


@dataclass
class CycleGANOptions:
    style: str
    data: Path
    run_dir: Path
    cache_dir: Path = Path(".cache/styles")
    ngf: int = 32
    n_blocks: int = 6
    ndf: int = 64
    size: int = 128  # training crop
    epochs: int = 10  # at the full learning rate
    decay_epochs: int = 10  # linear decay to 0
    epoch_iterations: int = 200
    lr: float = 2e-4
    beta1: float = 0.5
    lambda_cycle: float = 10.0
    lambda_identity: float = 0.5
    pool_size: int = 50
    seed: int = 0
    threads: int = 0
    time_limit_s: float = 0.0  # stop (resumably) after this much time in this call; 0: none
    time_budget_s: float = 0.0  # schedule by training time (see the module doc); 0: by iterations
    batch_size: int = 1
    device: str = "cpu"
    bf16: bool = False  # bfloat16 autocast on CUDA
    limit: int = 0  # smoke runs: only this many images per domain


class ImagePool:
    """History of generated images: half the time the discriminator sees an older fake."""

    def __init__(self, size: int, rng: random.Random) -> None:
        self.size, self.images, self.rng = size, [], rng

    def query(self, images: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W)
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif self.rng.random() < 0.5:
                i = self.rng.randrange(self.size)
                out.append(self.images[i])
                self.images[i] = image
            else:
                out.append(image)
        return torch.stack(out)


class UnpairedSampler:
    """Random crops with flips from each domain, scaled to [-1, 1]."""

    def __init__(
        self, domain_a: list[np.ndarray], domain_b: np.ndarray, size: int, seed: int
    ) -> None:
        self.a, self.b, self.size = domain_a, domain_b, size
        self.rng = np.random.default_rng(seed)

    def _crop(self, image: np.ndarray) -> torch.Tensor:
        # Scale the short side to 1.12 x size (the reference's 286 -> 256), then crop.
        h, w = image.shape[:2]
        scale = round(self.size * 1.12) / min(h, w)
        image = cv2.resize(
            image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA
        )
        h, w = image.shape[:2]
        top, left = self.rng.integers(h - self.size + 1), self.rng.integers(w - self.size + 1)
        crop = image[top : top + self.size, left : left + self.size]
        if self.rng.random() < 0.5:
            crop = crop[:, ::-1]
        return torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1).float() / 127.5 - 1.0

    def pair(self, batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:  # 2 x (B, 3, size, size)
        a = [self._crop(self.a[self.rng.integers(len(self.a))]) for _ in range(batch)]
        b = [self._crop(self.b[self.rng.integers(len(self.b))]) for _ in range(batch)]
        return torch.stack(a), torch.stack(b)


class CycleGAN(nn.Module):
    def __init__(self, options: CycleGANOptions) -> None:
        super().__init__()
        config = GeneratorConfig(ngf=options.ngf, n_blocks=options.n_blocks)
        self.g_ab, self.g_ba = (
            cyclegan_generator(config),
            cyclegan_generator(config),
        )  # photo->painting, back
        self.d_a, self.d_b = PatchDiscriminator(options.ndf), PatchDiscriminator(options.ndf)


def _lsgan(prediction: torch.Tensor, real: bool) -> torch.Tensor:
    prediction = prediction.float()
    target = torch.ones_like(prediction) if real else torch.zeros_like(prediction)
    return nn.functional.mse_loss(prediction, target)


def _autocast(options: CycleGANOptions) -> torch.autocast:
    enabled = options.bf16 and options.device.startswith("cuda")
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=enabled)


def train_step(
    nets: CycleGAN,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    pools: tuple[ImagePool, ImagePool],
    real_a: torch.Tensor,
    real_b: torch.Tensor,
    options: CycleGANOptions,
) -> dict[str, float]:
    """One iteration: update both generators, then both discriminators."""
    lam, lam_id = options.lambda_cycle, options.lambda_cycle * options.lambda_identity
    with _autocast(options):
        fake_b, fake_a = nets.g_ab(real_a), nets.g_ba(real_b)
        nets.d_a.requires_grad_(False)
        nets.d_b.requires_grad_(False)
        l1 = nn.functional.l1_loss
        parts = {
            "g_ab": _lsgan(nets.d_b(fake_b), True),
            "g_ba": _lsgan(nets.d_a(fake_a), True),
            "cycle_a": l1(nets.g_ba(fake_b).float(), real_a) * lam,
            "cycle_b": l1(nets.g_ab(fake_a).float(), real_b) * lam,
        }
        if lam_id > 0:
            parts["idt_a"] = l1(nets.g_ba(real_a).float(), real_a) * lam_id
            parts["idt_b"] = l1(nets.g_ab(real_b).float(), real_b) * lam_id
    opt_g.zero_grad(set_to_none=True)
    sum(parts.values()).backward()
    opt_g.step()

    nets.d_a.requires_grad_(True)
    nets.d_b.requires_grad_(True)
    pool_b, pool_a = pools[0].query(fake_b), pools[1].query(fake_a)
    with _autocast(options):
        d_b = 0.5 * (_lsgan(nets.d_b(real_b), True) + _lsgan(nets.d_b(pool_b), False))
        d_a = 0.5 * (_lsgan(nets.d_a(real_a), True) + _lsgan(nets.d_a(pool_a), False))
    opt_d.zero_grad(set_to_none=True)
    (d_a + d_b).backward()
    opt_d.step()
    parts.update(d_a=d_a, d_b=d_b)
    return {k: float(v.detach()) for k, v in parts.items()}


def sample_grid(nets: CycleGAN, real_a: torch.Tensor, real_b: torch.Tensor, path: Path) -> None:
    """Rows: A | G_AB(A) | G_BA(G_AB(A)) and B | G_BA(B) | G_AB(G_BA(B)), saved as PNG."""
    with torch.no_grad():
        fake_b, fake_a = nets.g_ab(real_a), nets.g_ba(real_b)
        rows = [
            torch.cat([real_a, fake_b, nets.g_ba(fake_b)], dim=3),
            torch.cat([real_b, fake_a, nets.g_ab(fake_a)], dim=3),
        ]
    grid = torch.cat([r[0] for r in rows], dim=1).float().cpu()  # (3, 2H, 3W)
    image = ((grid.permute(1, 2, 0).numpy() + 1) * 127.5).clip(0, 255).astype(np.uint8)
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


def _lr_factor(options: CycleGANOptions, epoch: int, train_time_s: float) -> float:
    if options.time_budget_s:
        return min(1.0, 2.0 * (1.0 - train_time_s / options.time_budget_s))
    # The reference's "linear" policy: 1 for `epochs`, then linearly down to 0 over `decay_epochs`.
    return 1.0 - max(0, epoch - options.epochs + 1) / float(options.decay_epochs + 1)


def _done(options: CycleGANOptions, iteration: int, total: int, train_time_s: float) -> bool:
    if options.time_budget_s:
        return train_time_s >= options.time_budget_s
    return iteration >= total


@dataclass
class _Run:
    """The networks, their optimisers and where the run stands; checkpointed, resumable."""

    nets: CycleGAN
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    device: torch.device
    iteration: int = 0
    train_time_s: float = 0.0
    history: list[dict] = field(default_factory=list)


def _build(options: CycleGANOptions) -> _Run:
    device = torch.device(options.device)
    torch.backends.cudnn.benchmark = device.type == "cuda"  # fixed crop size
    nets = CycleGAN(options).to(device)
    betas = (options.beta1, 0.999)
    generators = chain(nets.g_ab.parameters(), nets.g_ba.parameters())
    critics = chain(nets.d_a.parameters(), nets.d_b.parameters())
    return _Run(
        nets,
        torch.optim.Adam(generators, lr=options.lr, betas=betas),
        torch.optim.Adam(critics, lr=options.lr, betas=betas),
        device,
    )


def _resume(run: _Run, options: CycleGANOptions) -> None:
    state = resume_state(options.run_dir)
    if state is None:
        return
    run.nets.load_state_dict(state["model"])
    run.opt_g.load_state_dict(state["optimiser"]["g"])
    run.opt_d.load_state_dict(state["optimiser"]["d"])
    run.iteration, run.train_time_s = state["iteration"], state["train_time_s"]
    run.history = state["history"]


def _save(run: _Run, options: CycleGANOptions, epoch: int) -> None:
    """last.pt in the one checkpoint format (training.checkpoints); the generator's layout is
    the published one, so `config` holds its sizes."""
    save_checkpoint(
        options.run_dir / LAST,
        {
            "model": run.nets.state_dict(),
            "optimiser": {"g": run.opt_g.state_dict(), "d": run.opt_d.state_dict()},
            "config": {"ngf": options.ngf, "n_blocks": options.n_blocks},
            "options": options_json(options),
            "epoch": epoch,
            "iteration": run.iteration,
            "train_time_s": run.train_time_s,
            "device_name": _device_name(run.device),
            "history": run.history,
        },
    )


def _end_epoch(run: _Run, options: CycleGANOptions, sampler, epoch: int, running: dict) -> None:
    """A sample grid of the epoch and its losses in the history."""
    run.nets.eval()
    sample_a, sample_b = (x.to(run.device) for x in sampler.pair())
    sample_grid(run.nets, sample_a, sample_b, options.run_dir / f"samples_epoch{epoch + 1:03d}.png")
    run.history.append(
        {
            "epoch": epoch + 1,
            "iteration": run.iteration,
            "train_time_s": round(run.train_time_s, 1),
            **running,
        }
    )


def _result(run: _Run, options: CycleGANOptions, total: int, running: dict) -> dict:
    result = {
        "style": options.style,
        "iterations": run.iteration,
        "total_iterations": total or run.iteration,
        "finished": _done(options, run.iteration, total, run.train_time_s),
        "batch_size": options.batch_size,
        "device": _device_name(run.device),
        "train_time_s": round(run.train_time_s, 1),
        "seconds_per_iteration": round(run.train_time_s / max(1, run.iteration), 3),
        "losses": running,
    }
    (options.run_dir / "metrics.json").write_text(json.dumps(result, indent=2))
    return result


def run_cyclegan(options: CycleGANOptions) -> dict:
    """Train (or resume) one CycleGAN; returns the metrics also written to RUN_DIR/metrics.json."""
    prepare_run_dir(options)
    content = load_content(options.data, options.cache_dir, limit=options.limit)
    domain_a = list(content.photos) + list(content.train_frames)  # never the held-out frames
    domain_b = load_images(options.data / "styles" / options.style, limit=options.limit)
    run = _build(options)
    _resume(run, options)
    # With a time budget the number of iterations is unknown until the budget is spent.
    total = (
        0
        if options.time_budget_s
        else (options.epochs + options.decay_epochs) * (options.epoch_iterations)
    )
    sampler = UnpairedSampler(domain_a, domain_b, options.size, options.seed + run.iteration)
    rng = random.Random(options.seed + run.iteration)
    pools = (ImagePool(options.pool_size, rng), ImagePool(options.pool_size, rng))
    started, time_before = time.perf_counter(), run.train_time_s
    progress = tqdm(total=total or None, initial=run.iteration, desc=f"cyclegan {options.style}")
    running: dict[str, float] = {}
    while not _done(options, run.iteration, total, run.train_time_s):
        epoch = run.iteration // options.epoch_iterations
        for opt in (run.opt_g, run.opt_d):
            for group in opt.param_groups:
                group["lr"] = options.lr * _lr_factor(options, epoch, run.train_time_s)
        run.nets.train()
        real_a, real_b = (x.to(run.device) for x in sampler.pair(options.batch_size))
        parts = train_step(run.nets, run.opt_g, run.opt_d, pools, real_a, real_b, options)
        run.iteration += 1
        running = {k: 0.95 * running.get(k, v) + 0.05 * v for k, v in parts.items()}
        progress.update(1)
        progress.set_postfix({k: f"{v:.3f}" for k, v in running.items() if not k.startswith("idt")})
        run.train_time_s = time_before + time.perf_counter() - started
        finished = _done(options, run.iteration, total, run.train_time_s)
        epoch_end = run.iteration % options.epoch_iterations == 0 or finished
        out_of_time = options.time_limit_s and time.perf_counter() - started > options.time_limit_s
        if epoch_end:
            _end_epoch(run, options, sampler, epoch, running)
        if epoch_end or out_of_time:
            _save(run, options, epoch)
        if out_of_time:
            break
    progress.close()
    return _result(run, options, total, running)


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "cpu"
