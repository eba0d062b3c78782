"""Numbers for stylizers: GMAC, CPU fps in onnxruntime, PSNR/SSIM against a teacher, and KID.

KID (Binkowski et al., 2018) is the unbiased squared MMD with the polynomial kernel
k(x, y) = (x.y / d + 1)^3, here on ImageNet EfficientNet-Lite0 pooled features (1280-d).

    kid = kernel_inception_distance(features_a, features_b)
    fps = onnx_fps(path, height=240, width=320)
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import torch
from torch import nn
from torch.nn import functional as F

from training.efficientnet_lite import LITE_MEAN, LITE_STD, EfficientNetLite


def count_gmac(model: nn.Module, height: int = 256, width: int = 256) -> float:
    """Multiply-accumulates of convolutions and linear layers for one (1, 3, H, W) input, in G."""
    total = 0

    def conv_hook(module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.ConvTranspose2d):
            # Each input pixel scatters a full kernel into the output.
            pixels = _inputs[0].shape[2] * _inputs[0].shape[3]
            total += (
                pixels
                * module.in_channels
                * module.out_channels
                * np.prod(module.kernel_size)
                // module.groups
            )
        elif isinstance(module, nn.Conv2d):
            pixels = output.shape[2] * output.shape[3]
            per_pixel = (
                module.in_channels
                // module.groups
                * np.prod(module.kernel_size)
                * module.out_channels
            )
            total += pixels * per_pixel
        elif isinstance(module, nn.Linear):
            total += module.in_features * module.out_features

    handles = [
        m.register_forward_hook(conv_hook)
        for m in model.modules()
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear)
    ]
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, height, width))
    finally:
        for handle in handles:
            handle.remove()
    return float(total) / 1e9


def ort_session(path: Path, threads: int = 2) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def time_fps(run, repeats: int = 20, warmup: int = 3, max_seconds: float = 30.0) -> float:
    """Frames per second of `run()` (median of per-call times, so a busy neighbour hurts less)."""
    for _ in range(warmup):
        run()
    times = []
    deadline = time.perf_counter() + max_seconds
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
        if time.perf_counter() > deadline:
            break
    return 1.0 / float(np.median(times))


def throughput_fps(run, frames_in_flight: int, frames: int = 40) -> float:
    """Frames per second when `frames_in_flight` threads call `run()` (one frame each) at once."""
    run()
    per_thread = frames // frames_in_flight
    workers = [
        threading.Thread(target=lambda: [run() for _ in range(per_thread)])
        for _ in range(frames_in_flight)
    ]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return per_thread * frames_in_flight / (time.perf_counter() - started)


def onnx_style_run(path: Path, height: int = 240, width: int = 320, threads: int = 2):
    """A callable that runs one random frame through a single-input NCHW stylizer."""
    session = ort_session(path, threads)
    name = session.get_inputs()[0].name
    x = np.random.default_rng(0).random((1, 3, height, width), dtype=np.float32)
    return lambda: session.run(None, {name: x})


def onnx_fps(
    path: Path, height: int = 240, width: int = 320, threads: int = 2, repeats: int = 20
) -> float:
    """fps of a single-input NCHW stylizer in onnxruntime on `threads` CPU threads."""
    return time_fps(onnx_style_run(path, height, width, threads), repeats=repeats)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM (Wang et al. 2004: Gaussian window 11, sigma 1.5), averaged over RGB channels."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    x, y = a.astype(np.float64), b.astype(np.float64)

    def blur(img: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(img, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    ssim_map = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(ssim_map.mean())


def lite_features(encoder: EfficientNetLite, images: np.ndarray, batch: int = 32) -> np.ndarray:
    """(N, H, W, 3) uint8 RGB -> (N, 1280) EfficientNet-Lite0 pooled features at 224x224."""
    mean = torch.tensor(LITE_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(LITE_STD).view(1, 3, 1, 1)
    out = []
    encoder.eval()
    with torch.no_grad():
        for start in range(0, len(images), batch):
            x = torch.from_numpy(np.ascontiguousarray(images[start : start + batch])).permute(
                0, 3, 1, 2
            )
            x = F.interpolate(x.float() / 255.0, size=(224, 224), mode="bilinear", antialias=True)
            out.append(encoder.features((x - mean) / std).numpy())
    return np.concatenate(out).astype(np.float64)


def kernel_inception_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 between feature sets (N, d) and (M, d) with kernel (x.y/d + 1)^3."""
    d = x.shape[1]
    kxx = (x @ x.T / d + 1) ** 3
    kyy = (y @ y.T / d + 1) ** 3
    kxy = (x @ y.T / d + 1) ** 3
    n, m = len(x), len(y)
    term_x = (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
    term_y = (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(term_x + term_y - 2 * kxy.mean())
