"""Model families by name, so `train --model NAME` needs no if-chains.

model = build_model("r2plus1d", num_classes=3)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from service.video.preprocess import ClipSpec
from training.classify.frame_chunks import FRAMES_PER_PASS
from training.classify.models.cnn_lstm import resnet_lstm, vgg_lstm
from training.classify.models.csn import csn_small, csn_unnormalised
from training.classify.models.effnet_temporal import (
    EFFNET_CLIP_SPEC,
    effnet_temporal,
    effnet_tuned,
)
from training.classify.models.i3d_effnet_temporal import i3d_effnet_temporal
from training.classify.models.i3d_temporal import I3D_CLIP_SPEC, i3d_temporal
from training.classify.models.r2plus1d import r2plus1d_small, r2plus1d_study_size


@dataclass(frozen=True)
class Family:
    builder: Callable[[int], nn.Module]
    display_name: str
    clip_spec: ClipSpec
    # "frozen_features": a frozen pretrained encoder, the head trained on cached features.
    loop: str = "end_to_end"
    epochs: int = 30
    lr: float = 3e-3
    batch_size: int = 8
    # Frames its exported per-frame image encoder sees at once (training/classify/frame_chunks);
    # 0: the whole clip.
    frames_per_encoder_pass: int = 0
    # Its large convolutions' weights kept as int8 in the ONNX file (the builder rounds them in
    # torch too): training/classify/int8_weights.py.
    int8_weights: bool = False


FAMILIES: dict[str, Family] = {
    # From scratch on nine classes (~400 training clips, cached), an epoch takes ~55 s on 2 CPU
    # cores for r2plus1d, ~75 s for vgg_lstm, ~10 s for resnet_lstm: about 2.5 hours for the four
    # together; a GPU run can afford more (--epochs).
    "r2plus1d": Family(
        r2plus1d_small, "R(2+1)D ResNet (factorised 3D convolutions)", ClipSpec(), epochs=35
    ),
    # Comparison (docs/training.md): the same layout narrowed to the study's 0.44 M parameters.
    "r2plus1d_study": Family(
        r2plus1d_study_size,
        "R(2+1)D ResNet (factorised 3D convolutions), the study's size",
        ClipSpec(),
        epochs=35,
    ),
    # The VGG-style backbone costs ~6 GMAC per clip at 112 px; 80 px keeps a CPU run near an hour.
    "vgg_lstm": Family(
        vgg_lstm,
        "2D CNN + LSTM, VGG-style backbone",
        ClipSpec(resize_short=96, crop=80),
        lr=1e-3,
        epochs=60,
    ),
    "resnet_lstm": Family(
        resnet_lstm, "2D CNN + LSTM, ResNet-style backbone", ClipSpec(), lr=2e-3, epochs=60
    ),
    "csn": Family(csn_small, "Channel-separated network (ir-CSN)", ClipSpec(), epochs=25),
    # Ablation, not shipped: CSN without BN after its depthwise convolutions and with default
    # init, the set-up that collapses (the study's 18 %). Compare with `csn`.
    "csn_unnormalised": Family(
        csn_unnormalised, "ablation: CSN without depthwise BN / init fixes", ClipSpec(), epochs=40
    ),
    # The default until 2026-12-07, now also the fusion's frame branch: the frozen ImageNet
    # EfficientNet-Lite0 and five temporal heads trained on cached features (seconds an epoch
    # once the trunk maps are cached).
    "effnet_temporal": Family(
        effnet_temporal,
        "EfficientNet-Lite0 (ImageNet, frozen) + five temporal attention heads averaged",
        EFFNET_CLIP_SPEC,
        loop="frozen_features",
        epochs=60,
        lr=1e-3,
        batch_size=32,
        frames_per_encoder_pass=FRAMES_PER_PASS,
    ),
    # Comparison, not shipped (docs/training.md): the last two stages fine-tuned with the head
    # on the cached trunk maps, ~4.5 min an epoch on 2 cores.
    "effnet_tuned": Family(
        effnet_tuned,
        "EfficientNet-Lite0 (ImageNet, last two stages fine-tuned) + temporal attention head",
        EFFNET_CLIP_SPEC,
        loop="frozen_features",
        epochs=12,
        lr=1e-3,
        batch_size=32,
    ),
    # The default for a day (docs/training.md): the video-pretrained Kinetics-400 I3D in
    # Lite0's place; now the fusion's video branch.
    "i3d_temporal": Family(
        i3d_temporal,
        "I3D (Kinetics-400, frozen) + five temporal attention heads averaged",
        I3D_CLIP_SPEC,
        loop="frozen_features",
        epochs=60,
        lr=1e-3,
        batch_size=32,
        int8_weights=True,
    ),
    # The default since 2026-12-07 (docs/training.md): I3D and Lite0 side by side on I3D's
    # input, each with its own heads (training/classify/fusion_training.py); I3D runs only on
    # the clips Lite0 is not sure of (I3DEffNetTemporal.cascade).
    "i3d_effnet_temporal": Family(
        i3d_effnet_temporal,
        "I3D (Kinetics-400) + EfficientNet-Lite0 (ImageNet), both frozen, five temporal "
        "attention heads each, averaged; Lite0 alone on the clips it is sure of",
        I3D_CLIP_SPEC,
        loop="fusion",
        epochs=60,
        lr=1e-3,
        batch_size=32,
        int8_weights=True,
    ),
}


def get_family(name: str) -> Family:
    if name not in FAMILIES:
        raise KeyError(f"unknown model family {name!r}; known: {', '.join(sorted(FAMILIES))}")
    return FAMILIES[name]


def build_model(name: str, num_classes: int) -> nn.Module:
    return get_family(name).builder(num_classes)
