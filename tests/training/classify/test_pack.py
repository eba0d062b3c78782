"""A packed copy of the clips, to train elsewhere: small, without held-out clips, same split."""

from pathlib import Path

from tests.utils.data import SHARED_DATA, require_path
from training.classify.clip_cache import decode_clip
from training.classify.pack import pack_clips
from training.classify.ucf101 import ClipRecord, discover_clips, split_by_group

CLASSES = ["Punch", "ApplyEyeMakeup"]  # one class of videos, one of frame folders


def _names(records: list[ClipRecord]) -> list[tuple[str, str, str]]:
    return sorted((r.label, r.name, r.group) for r in records)


def _sources(records: list[ClipRecord]) -> dict[tuple[str, str], ClipRecord]:
    return {(r.label, r.name): r for r in records}


def _clip_files(root: Path) -> dict[Path, int]:
    return {f: f.stat().st_mtime_ns for f in root.rglob("*") if f.suffix in {".mp4", ".jpg"}}


def test_packed_copy_splits_like_the_original_without_its_held_out_clips(tmp_path: Path) -> None:
    require_path(SHARED_DATA / "ucf101" / "Punch", "UCF101 Punch clips")
    out = tmp_path / "packed"
    result = pack_clips(SHARED_DATA, out, short_side=128, classes=CLASSES)

    original = split_by_group(discover_clips(SHARED_DATA, CLASSES))
    packed = split_by_group(discover_clips(out, CLASSES))
    assert _names(packed.train) == _names(original.train)
    assert _names(packed.val) == _names(original.val)
    assert packed.test == [] and result["held_out_left_out"] == len(original.test) > 0
    assert result["clips"] == len(original.train) + len(original.val)

    sources = _sources(original.train)
    for kind in ("video", "frames"):
        copy = next(r for r in packed.train if r.kind == kind)
        frames, source = decode_clip(copy), decode_clip(sources[(copy.label, copy.name)])
        assert len(frames) == len(source)
        assert min(frames[0].shape[:2]) == 128
        # the same picture, smaller: colours in their channels, no other frame
        assert abs(frames[0].mean((0, 1)) - source[0].mean((0, 1))).max() < 6

    before = _clip_files(out)
    pack_clips(SHARED_DATA, out, short_side=128, classes=CLASSES)  # no clip is packed again
    assert _clip_files(out) == before
