"""Each shipped classifier on onnxruntime and on OpenVINO: the same answers? how much faster?

    python benchmarks/classify_runtimes.py [--data ../shared/data] [--threads 2] [--json out.json]
    python benchmarks/classify_runtimes.py --name i3d_effnet_temporal --against runs/int8_candidate

For every classifier of the manifest, loaded as the service loads it both ways
(`load_classifier(..., openvino=...)`; OpenVINO computes in bfloat16 on CPUs with bfloat16 units),
or with `--against DIR` the same classifier from two model folders, both on onnxruntime (a
candidate file against the shipped one):

1. Agreement on its training + validation clips (served input, one clip a call): on how many
   the top-1 label, and the `confident` verdict under the manifest's open-set rule, differ; and
   the largest logit difference.
2. CPU time: the mean over the first clip of every held-out group of each clip's median of three
   calls, the two sides alternating call by call, so that drift weighs on both alike.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path[:0] = [str(REPO_ROOT)]

from service.contract.manifest import load_manifest  # noqa: E402
from service.inference.classifier import Classifier, load_classifier, verdict  # noqa: E402
from training.classify.codec_check import serving_input  # noqa: E402
from training.classify.latency import one_clip_per_group  # noqa: E402
from training.classify.ucf101 import discover_clips  # noqa: E402

CALLS_PER_CLIP = 3


def _outputs(classifier: Classifier, clip: np.ndarray) -> tuple[np.ndarray, float | None]:
    entry = classifier.entry
    names = [entry.output_name] + ([entry.open_set.output_name] if entry.open_set else [])
    results = classifier.session.run(names, {entry.input_name: clip})
    return results[0][0], float(results[1].ravel()[0]) if entry.open_set else None


def compare(models: Path, data: Path, threads: int, name: str, against: Path | None) -> dict:
    entry = next(e for e in load_manifest(models).classifiers if e.name == name)
    if against is None:
        runtimes = {
            runtime: load_classifier(models, entry, threads, openvino=runtime == "openvino")
            for runtime in ("onnxruntime", "openvino")
        }
    else:
        other = next(e for e in load_manifest(against).classifiers if e.name == name)
        runtimes = {
            "models": load_classifier(models, entry, threads, openvino=False),
            "against": load_classifier(against, other, threads, openvino=False),
        }
    first, second = runtimes
    held_out = set(entry.training["test_groups"])
    records = discover_clips(data, entry.labels)
    spec = entry.input.clip_spec()
    top1_differ = confident_differ = 0
    largest = 0.0
    seen = [record for record in records if record.group not in held_out]
    for record in seen:
        clip = serving_input(record, spec)
        outputs = [_outputs(classifier, clip) for classifier in runtimes.values()]
        # The service's own answer from each runtime's outputs: top label and `confident`.
        a, b = (
            verdict(classifier, logits, distance, 1)
            for classifier, (logits, distance) in zip(runtimes.values(), outputs, strict=True)
        )
        top1_differ += int(a["predictions"][0].label != b["predictions"][0].label)
        confident_differ += int(a["confident"] != b["confident"])
        (a_logits, _), (b_logits, _) = outputs
        largest = max(largest, float(np.abs(a_logits - b_logits).max()))
    firsts = one_clip_per_group([record for record in records if record.group in held_out])
    clips = [serving_input(record, spec) for record in firsts]
    times: dict[str, list[float]] = {runtime: [] for runtime in runtimes}
    for classifier in runtimes.values():
        _outputs(classifier, clips[0])  # one-off costs
    for clip in clips:
        per_call: dict[str, list[float]] = {runtime: [] for runtime in runtimes}
        for _ in range(CALLS_PER_CLIP):
            for runtime, classifier in runtimes.items():
                started = time.perf_counter()
                _outputs(classifier, clip)
                per_call[runtime].append((time.perf_counter() - started) * 1000)
        for runtime, values in per_call.items():
            times[runtime].append(statistics.median(values))
    ms = {runtime: statistics.mean(values) for runtime, values in times.items()}
    return {
        "clips_compared": len(seen),
        "top1_differ": top1_differ,
        "confident_differ": confident_differ,
        "largest_logit_difference": round(largest, 4),
        f"ms_{first}": round(ms[first], 1),
        f"ms_{second}": round(ms[second], 1),
        f"{second}_over_{first}": round(ms[second] / ms[first], 3),
        "held_out_groups_timed": len(clips),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=Path, default=REPO_ROOT / "exported_models")
    parser.add_argument("--data", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--name", nargs="+", help="only these classifiers (default: all)")
    parser.add_argument(
        "--against", type=Path, help="another models folder, on onnxruntime, instead of OpenVINO"
    )
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)
    names = args.name or [e.name for e in load_manifest(args.models).classifiers]
    first, second = ("models", "against") if args.against else ("onnxruntime", "openvino")
    print(
        f"{'model':<22}{'clips':>6}{'top-1 differ':>14}{'confident differ':>18}"
        f"{'max |dlogit|':>14}{'ms ' + first:>16}{'ms ' + second:>16}{'ratio':>8}"
    )
    report = {}
    for name in names:
        row = report[name] = compare(args.models, args.data, args.threads, name, args.against)
        print(
            f"{name:<22}{row['clips_compared']:>6}{row['top1_differ']:>14}"
            f"{row['confident_differ']:>18}{row['largest_logit_difference']:>14}"
            f"{row[f'ms_{first}']:>16}{row[f'ms_{second}']:>16}"
            f"{row[f'{second}_over_{first}']:>8}",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
