"""UCF101 discovery and splits: classes and groups, group-disjoint and official splits."""

from pathlib import Path

import pytest

from tests.utils.data import SHARED_DATA, UCF101, make_fake_ucf101, write_official_testlist
from training.classify.ucf101 import discover_clips, split_by_group


@pytest.fixture
def fake_ucf(tmp_path: Path) -> Path:
    sources = {
        "YoYo": sorted((UCF101 / "YoYo").glob("*.avi"))[:3],
        "Punch": sorted((UCF101 / "Punch").glob("*.avi"))[:3],
        "Basketball": [SHARED_DATA / "clips" / "v_Basketball_g01_c01.avi"],
    }
    return make_fake_ucf101(tmp_path, sources, groups=10, per_group=2)


def _groups(clips) -> set[str]:
    return {c.group for c in clips}


def test_discovers_every_clip_with_class_and_group(fake_ucf: Path) -> None:
    clips = discover_clips(fake_ucf.parent)
    assert len(clips) == 3 * 10 * 2
    assert {c.label for c in clips} == {"YoYo", "Punch", "Basketball"}
    first = next(c for c in clips if c.name == "v_Punch_g03_c02")
    assert (first.group, first.kind, first.official_subset) == ("Punch/g03", "video", None)


def test_group_split_never_shares_a_group(fake_ucf: Path) -> None:
    split = split_by_group(discover_clips(fake_ucf), test_fraction=0.3, val_fraction=0.15)
    assert not _groups(split.train) & _groups(split.test)
    assert not _groups(split.train) & _groups(split.val)
    assert not _groups(split.val) & _groups(split.test)
    # the lowest-numbered groups are held out, like UCF101's official test groups g01-g07
    assert _groups(split.test) == {
        f"{c}/g0{g}" for c in ("YoYo", "Punch", "Basketball") for g in (1, 2, 3)
    }
    assert len(split.train) + len(split.val) + len(split.test) == 60


def test_official_split_files_are_honoured(fake_ucf: Path) -> None:
    write_official_testlist(fake_ucf, test_groups={2, 5})
    split = split_by_group(discover_clips(fake_ucf.parent))
    assert {g.split("/")[1] for g in _groups(split.test)} == {"g02", "g05"}
    assert "official split 1" in split.method


def test_class_subset_and_unknown_class(fake_ucf: Path) -> None:
    clips = discover_clips(fake_ucf.parent, classes=["YoYo", "Punch"])
    assert {c.label for c in clips} == {"YoYo", "Punch"}
    with pytest.raises(ValueError, match="classes not found under .*: Skiing"):
        discover_clips(fake_ucf.parent, classes=["YoYo", "Skiing"])


NEW_CLASSES = ("Archery", "BasketballDunk", "HorseRace", "PlayingPiano", "PlayingViolin", "Surfing")


def test_shared_data_reads_every_layout_and_codec() -> None:
    clips = discover_clips(SHARED_DATA)
    by_label = {label: [c for c in clips if c.label == label] for label in {c.label for c in clips}}
    assert set(by_label) == {"YoYo", "Punch", "ApplyEyeMakeup", *NEW_CLASSES}
    assert len(by_label["YoYo"]) == 101 and len(by_label["Punch"]) == 25
    assert len(by_label["ApplyEyeMakeup"]) == 125
    assert {c.kind for c in by_label["ApplyEyeMakeup"]} == {"frames"}
    for label in NEW_CLASSES:  # re-encoded MP4s of groups g08-g25
        assert 72 <= len(by_label[label]) <= 90
        assert {c.path.suffix for c in by_label[label]} == {".mp4"}
        assert min(c.group for c in by_label[label]) == f"{label}/g08"
    split = split_by_group(clips)
    # ApplyEyeMakeup's subsets file (subset 2 = official test) decides its test clips
    assert sum(c.label == "ApplyEyeMakeup" for c in split.test) == 44
    # the six re-encoded classes hold out their lowest groups, as UCF101's official split would
    assert {c.group for c in split.test if c.label == "Archery"} == {
        f"Archery/g{g:02d}" for g in range(8, 14)
    }
    assert not _groups(split.train) & _groups(split.test)
    assert not _groups(split.train) & _groups(split.val)
