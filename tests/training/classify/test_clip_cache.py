"""The decoded-clip cache: one entry per source clip and size, renewed when the source changes."""

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.utils.data import YOYO_CLIP
from training.classify.clip_cache import ClipCache
from training.classify.ucf101 import ClipRecord


def test_a_changed_source_replaces_its_entry_and_leaves_other_clips_alone(tmp_path: Path) -> None:
    # Two clips of the same name in different folders, as frame folders of two classes have.
    records = []
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        shutil.copy(YOYO_CLIP, tmp_path / folder / YOYO_CLIP.name)
        records.append(ClipRecord(tmp_path / folder / YOYO_CLIP.name, "YoYo", folder, "video"))
    cache = ClipCache(tmp_path / "cache", resize_short=32)
    first = [cache.frames(r).copy() for r in records]
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2

    stat = records[0].path.stat()  # the data copied again: same bytes, a new mtime
    os.utime(records[0].path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    again = cache.frames(records[0])

    assert (again == first[0]).all()
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2  # the stale decode is gone
    assert (cache.frames(records[1]) == first[1]).all()


def test_writers_decoding_the_same_clip_at_once_all_get_it(tmp_path: Path) -> None:
    record = ClipRecord(YOYO_CLIP, "YoYo", "g01", "video")
    for attempt in range(3):
        cache = ClipCache(tmp_path / f"cache{attempt}", resize_short=32)
        with ThreadPoolExecutor(4) as pool:
            decoded = [frames.copy() for frames in pool.map(cache.frames, [record] * 4)]
        assert all((d == decoded[0]).all() for d in decoded)
        assert [f.name for f in (tmp_path / f"cache{attempt}").iterdir()] == [
            cache.frames(record).filename.name
        ]
