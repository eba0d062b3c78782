"""torch -> ONNX for a module that takes one `clip` input (B, 3, T, H, W): the one export call.

export_clip_module(model, spec, path, ["logits", "ood_distance"])
"""

from __future__ import annotations

from pathlib import Path

import torch

from service.video.preprocess import ClipSpec

OPSET = 17


def export_clip_module(
    module: torch.nn.Module,
    spec: ClipSpec,
    path: Path,
    outputs: list[str],
    batch_outputs: bool = True,
) -> None:
    """Write `module` (in eval mode) to `path`, its input `clip` and, unless `batch_outputs` is
    False (a cascade's parts, whose outputs are indices or flags), its outputs batch-sized."""
    dummy = torch.zeros(2, 3, spec.frames, spec.crop, spec.crop)
    batched = ["clip", *outputs] if batch_outputs else ["clip"]
    torch.onnx.export(
        module.eval(),
        (dummy,),
        str(path),
        input_names=["clip"],
        output_names=outputs,
        dynamic_axes={name: {0: "batch"} for name in batched},
        opset_version=OPSET,
        dynamo=False,
    )
