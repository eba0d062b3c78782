"""Unpacking training archives: layouts people make, and a header that lies about its size."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.custom.archive import ArchiveLimits, ArchiveTooLarge, UnsafeArchive, unpack_clips
from tests.utils.teach import zip_bytes

LIMITS = ArchiveLimits(max_clips=10, max_unpacked_bytes=1000)


def _unpack(tmp_path: Path, data: bytes, limits: ArchiveLimits = LIMITS):
    archive = tmp_path / "a.zip"
    archive.write_bytes(data)
    (tmp_path / "out").mkdir()
    return unpack_clips(archive, tmp_path / "out", limits)


def test_one_top_folder_and_os_junk_are_accepted(tmp_path: Path) -> None:
    data = zip_bytes(
        {
            "my clips/wave/a.MP4": b"1",
            "my clips/clap/b.avi": b"22",
            "my clips/.DS_Store": b"x",
            "__MACOSX/my clips/wave/._a.MP4": b"x",
            "my clips/wave/Thumbs.db": b"x",
            "my clips/desktop.ini": b"x",
        }
    )
    clips = _unpack(tmp_path, data)
    assert [(c.label, c.path.name, c.shown) for c in clips] == [
        ("wave", "clip-000.mp4", "my clips/wave/a.MP4"),
        ("clap", "clip-001.avi", "my clips/clap/b.avi"),
    ]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["clip-000.mp4", "clip-001.avi"]


def test_inflating_stops_at_the_limit_whatever_the_header_claims(tmp_path: Path) -> None:
    data = bytearray(zip_bytes({"a/x.avi": bytes(5000), "b/y.avi": b"1"}))
    # Rewrite the sizes both headers claim for x.avi (5000) as 10: only inflating can tell.
    claimed = (5000).to_bytes(4, "little")
    data = bytes(data).replace(claimed, (10).to_bytes(4, "little"))
    with pytest.raises(UnsafeArchive, match="'a/x.avi' cannot be unpacked: Bad CRC-32"):
        _unpack(tmp_path, data)
    assert sum(p.stat().st_size for p in (tmp_path / "out").iterdir()) <= 10


def test_an_honest_bomb_is_refused_before_inflating(tmp_path: Path) -> None:
    with pytest.raises(ArchiveTooLarge, match="unpacks to 1.95 KiB, more than the limit of 1000"):
        _unpack(tmp_path, zip_bytes({"a/x.avi": bytes(2000), "b/y.avi": b"1"}))
    assert list((tmp_path / "out").iterdir()) == []


def test_a_damaged_compressed_entry_is_refused_by_name(tmp_path: Path) -> None:
    clip = bytes(range(256)) * 64  # compresses, so the entry is deflated
    data = bytearray(zip_bytes({"a/x.avi": clip, "b/y.avi": b"1"}))
    start = data.index(b"a/x.avi") + len("a/x.avi")  # the local header's name, then the data
    data[start + 2 : start + 6] = b"\xff\xff\xff\xff"  # the deflate stream's first bytes
    with pytest.raises(UnsafeArchive, match="'a/x.avi' cannot be unpacked: .*decompress"):
        _unpack(tmp_path, bytes(data), ArchiveLimits(max_clips=10, max_unpacked_bytes=10**6))
