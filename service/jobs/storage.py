"""Where the files of a job live: its upload, its style painting, its result.

A tiny interface with one backend today, a local folder the API and the workers share
(`ACTIONSTYLE_STORAGE_DIR`); an object-store backend can implement the same methods. Workers
always get local paths: a remote backend would download inputs and upload the result.

    storage = LocalStorage(Path("storage"))
    storage.put(job_id, "input.avi", uploaded_path)
    restyle_video(storage.path(job_id, "input.avi"), storage.scratch(job_id, attempt), ...)
    storage.commit_result(job_id, scratch)
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path
from typing import Protocol

RESULT_NAME = "result.mp4"
_FILE_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


class JobStorage(Protocol):
    def put(self, job_id: str, name: str, source: Path) -> Path:
        """Move `source` in as the job's file `name`; returns where it now is."""

    def path(self, job_id: str, name: str) -> Path:
        """A local path of the job's file `name` (it may not exist)."""

    def scratch(self, job_id: str, attempt: str) -> Path:
        """Where one attempt writes its result before `commit_result`."""

    def commit_result(self, job_id: str, scratch: Path) -> Path:
        """Make a finished scratch file the job's result, atomically."""

    def result(self, job_id: str) -> Path | None:
        """The finished result, or None."""

    def delete(self, job_id: str) -> None:
        """Remove every file of the job; nothing to remove is fine."""

    def purge_older_than(self, age_s: float) -> int:
        """Delete jobs untouched for `age_s` seconds; returns how many."""


class LocalStorage:
    """One folder per job under `root`: <root>/<job_id>/{input.*, style.*, result.mp4}."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _dir(self, job_id: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{32}", job_id):
            raise ValueError(f"'{job_id}' is not a job id")
        return self.root / job_id

    def _file(self, job_id: str, name: str) -> Path:
        if not _FILE_NAME.match(name):
            raise ValueError(f"'{name}' is not a storage file name")
        return self._dir(job_id) / name

    def put(self, job_id: str, name: str, source: Path) -> Path:
        target = self._file(job_id, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(source, target)
        return target

    def path(self, job_id: str, name: str) -> Path:
        return self._file(job_id, name)

    def scratch(self, job_id: str, attempt: str) -> Path:
        # One file per attempt: a redelivered job never writes into a file another attempt owns.
        return self._file(job_id, f"result-{attempt}.mp4")

    def commit_result(self, job_id: str, scratch: Path) -> Path:
        target = self._file(job_id, RESULT_NAME)
        os.replace(scratch, target)
        # Attempts whose worker died left their scratch files: the job is done, drop them.
        for stale in (*target.parent.glob("result-*.mp4"), *target.parent.glob(".result-*")):
            stale.unlink(missing_ok=True)
        return target

    def result(self, job_id: str) -> Path | None:
        path = self._file(job_id, RESULT_NAME)
        return path if path.is_file() else None

    def delete(self, job_id: str) -> None:
        shutil.rmtree(self._dir(job_id), ignore_errors=True)

    def purge_older_than(self, age_s: float) -> int:
        if not self.root.is_dir():
            return 0
        cutoff, purged = time.time() - age_s, 0
        for folder in self.root.iterdir():
            try:
                stale = folder.is_dir() and _newest_mtime(folder) < cutoff
            except FileNotFoundError:
                continue  # removed meanwhile by a cancel or another purge
            if stale:
                shutil.rmtree(folder, ignore_errors=True)
                purged += 1
        return purged


def _newest_mtime(folder: Path) -> float:
    times = [folder.stat().st_mtime]
    times += [entry.stat().st_mtime for entry in folder.iterdir()]
    return max(times)
