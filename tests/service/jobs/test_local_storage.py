"""The shared-folder backend's kept files (custom classifiers): round trip, and never purged."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest

from service.jobs.storage import LocalStorage


def test_kept_files_round_trip_and_outlive_every_job(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.put_blob("classifiers/anonymous/wave.npz", b"first")
    storage.put_blob("classifiers/anonymous/wave.npz", b"second")
    assert storage.get_blob("classifiers/anonymous/wave.npz") == b"second"
    assert storage.list_blobs("classifiers/anonymous") == ["classifiers/anonymous/wave.npz"]
    assert storage.list_blobs("classifiers/nobody") == []
    job_id = uuid.uuid4().hex
    storage.put_bytes(job_id, "style.img", b"x")
    old = time.time() - 3600
    for path in (tmp_path / job_id, tmp_path / job_id / "style.img", tmp_path / "classifiers"):
        os.utime(path, (old, old))
    assert storage.purge_older_than(60) == 1
    assert not (tmp_path / job_id).exists()
    assert storage.get_blob("classifiers/anonymous/wave.npz") == b"second"
    assert storage.delete_blob("classifiers/anonymous/wave.npz") is True
    assert storage.delete_blob("classifiers/anonymous/wave.npz") is False
    assert storage.get_blob("classifiers/anonymous/wave.npz") is None
    for bad in ("../x/a.npz", f"{job_id}/a.npz", "a.npz", "classifiers/../a", "c//a"):
        with pytest.raises(ValueError, match="is not a storage key"):
            storage.put_blob(bad, b"")
