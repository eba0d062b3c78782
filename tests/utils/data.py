"""Where the shared data lies, and builders of small data trees for tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("ACTIONSTYLE_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
CLIPS = SHARED_DATA / "clips"
UCF101 = SHARED_DATA / "ucf101"
YOYO_CLIP = UCF101 / "YoYo" / "v_YoYo_g01_c01.avi"
PUNCH_CLIP = UCF101 / "Punch" / "v_Punch_g01_c01.avi"
AUDIO_CLIP = CLIPS / "v_ApplyEyeMakeup_g01_c01.avi"
# The clips in CLIPS of actions no classifier is trained on: export measures the open set on them.
UNSEEN_ACTIONS = [
    "hmdb51_drink.mp4",
    "hmdb51_handstand.mp4",
    "hmdb51_jump.mp4",
    "kinetics_demo.mp4",
    "bigbuckbunny.mp4",
    "v_Basketball_g01_c01.avi",
]


def require_path(path: Path, what: str) -> None:
    """Missing inputs fail in CI (they are part of the checkout) and skip elsewhere."""
    if path.exists():
        return
    message = f"{what} not found at {path}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def make_fake_ucf101(
    root: Path, classes: dict[str, list[Path]], groups: int, per_group: int
) -> Path:
    """A `UCF-101/<Class>/v_<Class>_gNN_cMM.avi` tree of symlinks to real clips.

    Each class gets `groups` x `per_group` clips, cycling over the given source clips.
    """
    ucf = root / "UCF-101"
    for name, sources in classes.items():
        (ucf / name).mkdir(parents=True)
        for g in range(1, groups + 1):
            for c in range(1, per_group + 1):
                source = sources[((g - 1) * per_group + c - 1) % len(sources)]
                (ucf / name / f"v_{name}_g{g:02d}_c{c:02d}.avi").symlink_to(source.resolve())
    return ucf


def write_official_testlist(ucf: Path, test_groups: set[int]) -> None:
    """ucfTrainTestlist/{trainlist01,testlist01}.txt naming the clips of `test_groups` as test."""
    split_dir = ucf.parent / "ucfTrainTestlist"
    split_dir.mkdir()
    train, test = [], []
    for clip in sorted(ucf.glob("*/*.avi")):
        group = int(clip.stem.split("_g")[1][:2])
        (test if group in test_groups else train).append(f"{clip.parent.name}/{clip.name}")
    (split_dir / "testlist01.txt").write_text("\n".join(test) + "\n")
    (split_dir / "trainlist01.txt").write_text("\n".join(f"{t} 1" for t in train) + "\n")


# Style transfer data (paintings per painter, landscape photos).
STYLES_DATA = SHARED_DATA / "styles"
PHOTOS = SHARED_DATA / "photos"
