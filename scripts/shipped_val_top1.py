"""Each exported classifier's top-1 on the validation clips of its split, on the serving path.

The figure a retrained run has to reach to replace a shipped model (the rules in
docs/training.md): validation clips only, never the held-out ones.

    python scripts/shipped_val_top1.py --data ../shared/data [--name vgg_lstm csn]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import onnxruntime as ort
from tqdm import tqdm

from service.contract.manifest import selected_classifiers
from training.classify.codec_check import onnx_top1, serving_input
from training.classify.ucf101 import discover_clips, split_by_group

MODELS = Path(__file__).resolve().parents[1] / "exported_models"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--models", type=Path, default=MODELS)
    parser.add_argument("--name", nargs="+", help="only these classifiers (default: all)")
    args = parser.parse_args()
    results = {}
    for entry in selected_classifiers(args.models, args.name):
        session = ort.InferenceSession(
            str(args.models / entry.file), providers=["CPUExecutionProvider"]
        )
        clips = split_by_group(discover_clips(args.data, entry.labels)).val
        spec = entry.input.clip_spec()
        inputs = [serving_input(c, spec) for c in tqdm(clips, desc=entry.name, unit="clip")]
        top1 = onnx_top1(session, inputs, [entry.labels.index(c.label) for c in clips])
        results[entry.name] = {
            "val_clips": len(clips),
            "correct": round(top1 * len(clips)),
            "top1": top1,
        }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
