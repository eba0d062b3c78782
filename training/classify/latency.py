"""CPU latency of exported classifiers on real held-out clips, as the manifest reports it.

A clip's cost is not always the same: the default answers the clips its Lite0 branch is sure of
without running I3D (`I3DEffNetTemporal.cascade`). So latency is the mean over the first clip of
every held-out group, batch 1, each clip's median of a few runs: what a stream of such uploads
costs on average.

    python -m training latency --data ../shared/data   # again, on a quiet machine
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from service.contract.manifest import selected_classifiers, upsert_classifier
from service.video.preprocess import ClipSpec
from training.classify.codec_check import serving_input
from training.classify.ucf101 import ClipRecord, discover_clips

RUNS_PER_CLIP = 3


def one_clip_per_group(records: list[ClipRecord]) -> list[ClipRecord]:
    """The first clip (by path) of each group."""
    first: dict[tuple[str, str], ClipRecord] = {}
    for record in sorted(records, key=lambda r: str(r.path)):
        first.setdefault((record.label, record.group), record)
    return list(first.values())


def cpu_latency_ms(path: Path, inputs: list[np.ndarray]) -> float:
    """Mean over `inputs` ((1, 3, T, H, W) each) of their median onnxruntime times, 2 threads."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    session.run(None, {"clip": inputs[0]})  # one-off costs
    per_clip = []
    for clip in inputs:
        timings = []
        for _ in range(RUNS_PER_CLIP):
            started = time.perf_counter()
            session.run(None, {"clip": clip})
            timings.append((time.perf_counter() - started) * 1000)
        per_clip.append(float(np.median(timings)))
    return round(float(np.mean(per_clip)), 2)


def held_out_latency_ms(path: Path, records: list[ClipRecord], spec: ClipSpec) -> float:
    inputs = [serving_input(record, spec) for record in one_clip_per_group(records)]
    return cpu_latency_ms(path, inputs)


def remeasure_latency(models_dir: Path, data: Path, names: list[str] | None) -> dict:
    """CPU latency of exported classifiers measured again, with the load it was measured at.

    Export measures latency right after training, often beside other runs; run this on a quiet
    machine before the figures are quoted.
    """
    results = {}
    for entry in selected_classifiers(models_dir, names):
        tested = set(entry.training.get("test_groups", []))
        records = [r for r in discover_clips(data, entry.labels) if r.group in tested]
        if not records:
            raise ValueError(f"{entry.name}: none of its held-out groups are in {data}")
        latency = held_out_latency_ms(models_dir / entry.file, records, entry.input.clip_spec())
        load = round(os.getloadavg()[0], 2)
        entry.metrics.cpu_latency_ms = latency  # type: ignore[attr-defined]
        entry.metrics.cpu_latency_load = load  # type: ignore[attr-defined]
        upsert_classifier(models_dir, entry)
        results[entry.name] = {"cpu_latency_ms": latency, "load_average_1min": load}
    return results
