"""Find action clips on disk and split them by group, never putting one group on both sides.

Two layouts are read, alone or side by side under one data root:
- UCF101 videos: `<root>/[UCF-101|ucf101]/<Class>/v_<Class>_gNN_cMM.avi`, with the official
  `ucfTrainTestlist/` (`testlistNN.txt`) honoured when it is present beside the class folders;
- frame folders: `<root>/ucf101_rawframes/<Class>/<clip>/*.jpg` with an optional
  `<Class>_subsets.txt` (`name label subset`, subset 2 = official test).

    clips = discover_clips(Path("../shared/data"))
    split = split_by_group(clips, test_fraction=0.3, val_fraction=0.15)
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

VIDEO_SUFFIXES = {".avi", ".mp4", ".mov", ".mpg", ".mpeg", ".m4v"}
FRAME_SUFFIXES = {".jpg", ".jpeg", ".png"}
_UCF_NAME = re.compile(r"^v_(?P<cls>.+)_g(?P<group>\d+)_c(?P<clip>\d+)$")
_VIDEO_ROOT_NAMES = ("UCF-101", "ucf101", "UCF101")
_FRAME_ROOT_NAMES = ("ucf101_rawframes", "rawframes")


@dataclass(frozen=True)
class ClipRecord:
    path: Path
    label: str
    group: str  # clips of one group share actor and background: they stay on one side of a split
    kind: str  # "video" or "frames"
    official_subset: str | None = None  # "train" / "test" when a split file names this clip

    @property
    def name(self) -> str:
        return self.path.stem if self.kind == "video" else self.path.name


@dataclass(frozen=True)
class Split:
    train: list[ClipRecord]
    val: list[ClipRecord]
    test: list[ClipRecord]
    method: str

    @property
    def labels(self) -> list[str]:
        return sorted({c.label for c in self.train + self.val + self.test})


def _video_roots(root: Path) -> list[Path]:
    named = [root / name for name in _VIDEO_ROOT_NAMES]
    found = [c for c in named if c.is_dir() and _has_class_videos(c)]
    if not found and _has_class_videos(root):  # `root` is itself a UCF-101 folder
        found = [root]
    return found


def _has_class_videos(folder: Path) -> bool:
    return any(
        f.suffix.lower() in VIDEO_SUFFIXES and _UCF_NAME.match(f.stem)
        for d in folder.iterdir()
        if d.is_dir()
        for f in d.iterdir()
    )


def _official_test_names(video_root: Path) -> set[str] | None:
    for split_dir in (video_root / "ucfTrainTestlist", video_root.parent / "ucfTrainTestlist"):
        testlist = split_dir / "testlist01.txt"
        if testlist.is_file():
            lines = testlist.read_text().split()
            return {Path(line).stem for line in lines if line.endswith(tuple(VIDEO_SUFFIXES))}
    return None


def _discover_videos(video_root: Path) -> list[ClipRecord]:
    official_test = _official_test_names(video_root)
    records = []
    for class_dir in sorted(d for d in video_root.iterdir() if d.is_dir()):
        for f in sorted(class_dir.iterdir()):
            match = _UCF_NAME.match(f.stem)
            if f.suffix.lower() not in VIDEO_SUFFIXES or not match:
                continue
            subset = None
            if official_test is not None:
                subset = "test" if f.stem in official_test else "train"
            records.append(
                ClipRecord(
                    f, class_dir.name, f"{class_dir.name}/g{match['group']}", "video", subset
                )
            )
    return records


def _read_subsets(class_dir: Path) -> dict[str, str]:
    subsets_file = class_dir.parent / f"{class_dir.name}_subsets.txt"
    if not subsets_file.is_file():
        return {}
    subsets = {}
    for line in subsets_file.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3:
            subsets[parts[0]] = "test" if parts[2] == "2" else "train"
    return subsets


def _discover_frame_folders(frame_root: Path) -> list[ClipRecord]:
    records = []
    for class_dir in sorted(d for d in frame_root.iterdir() if d.is_dir()):
        subsets = _read_subsets(class_dir)
        clip_dirs = sorted(d for d in class_dir.iterdir() if d.is_dir() and _has_frames(d))
        position_in_subset: dict[str | None, int] = defaultdict(int)
        for clip_dir in clip_dirs:
            subset = subsets.get(clip_dir.name)
            match = _UCF_NAME.match(clip_dir.name)
            if match:
                group = f"g{match['group']}"
            else:
                # No group ids in the names: consecutive clips (UCF101 numbers them group by
                # group) form pseudo-groups of 5, never crossing the subsets file's train/test line.
                group = f"{subset or 'all'}-block{position_in_subset[subset] // 5:03d}"
                position_in_subset[subset] += 1
            records.append(
                ClipRecord(clip_dir, class_dir.name, f"{class_dir.name}/{group}", "frames", subset)
            )
    return records


def _has_frames(folder: Path) -> bool:
    return any(f.suffix.lower() in FRAME_SUFFIXES for f in folder.iterdir())


def discover_clips(root: Path, classes: list[str] | None = None) -> list[ClipRecord]:
    """Every clip under `root`, in both layouts, optionally only of `classes`."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data root {root} does not exist")
    records = [r for vr in _video_roots(root) for r in _discover_videos(vr)]
    for name in _FRAME_ROOT_NAMES:
        if (root / name).is_dir():
            records += _discover_frame_folders(root / name)
    if classes:
        missing = set(classes) - {r.label for r in records}
        if missing:
            raise ValueError(f"classes not found under {root}: {', '.join(sorted(missing))}")
        records = [r for r in records if r.label in set(classes)]
    if not records:
        raise ValueError(f"no clips found under {root}")
    return records


def describe_clips(root: Path, clips: list[ClipRecord]) -> str:
    """One line on what a model was trained from, e.g. for its manifest entry."""
    classes = sorted({c.label for c in clips})
    suffixes = Counter(c.path.suffix.lower() for c in clips if c.kind == "video")
    folders = sum(c.kind == "frames" for c in clips)
    parts = [f"{n} {suffix} videos" for suffix, n in sorted(suffixes.items())]
    if folders:
        parts.append(f"{folders} frame folders")
    return f"{len(classes)} classes from {root}: {len(clips)} clips ({', '.join(parts)})"


def _take_groups(groups: list[str], fraction: float, minimum: int = 1) -> set[str]:
    count = min(len(groups) - 1, max(minimum, math.ceil(fraction * len(groups))))
    return set(groups[:count])


def split_by_group(
    clips: list[ClipRecord], test_fraction: float = 0.3, val_fraction: float = 0.15
) -> Split:
    """Train / val / test with whole groups on each side.

    Test: the official split where a split file names the clip, else the lowest-numbered
    `test_fraction` of each class's groups (UCF101's official test groups are g01-g07, the lowest).
    Val: the highest-numbered `val_fraction` of the remaining groups, for model selection only.
    """
    by_class: dict[str, list[ClipRecord]] = defaultdict(list)
    for clip in clips:
        by_class[clip.label].append(clip)
    train, val, test = [], [], []
    methods = set()
    for label in sorted(by_class):
        class_clips = by_class[label]
        if any(c.official_subset for c in class_clips):
            methods.add("official split 1")
            is_test = {c.group for c in class_clips if c.official_subset == "test"}
        else:
            methods.add(f"lowest {test_fraction:.0%} of groups per class held out")
            groups = sorted({c.group for c in class_clips})
            is_test = _take_groups(groups, test_fraction)
        rest_groups = sorted({c.group for c in class_clips} - is_test)
        is_val = set(rest_groups[::-1][: len(_take_groups(rest_groups, val_fraction))])
        for clip in class_clips:
            side = test if clip.group in is_test else val if clip.group in is_val else train
            side.append(clip)
    return Split(train, val, test, "; ".join(sorted(methods)) + f"; val = top {val_fraction:.0%}")
