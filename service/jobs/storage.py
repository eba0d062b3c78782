"""Where the files of a job live: its upload, its style painting, its result.

A tiny interface with two backends: a local folder the API and the workers share
(`ACTIONSTYLE_STORAGE_DIR`, a compose volume) and S3-compatible object storage
(`ACTIONSTYLE_STORAGE_URL=s3://bucket/prefix`, `service.jobs.s3storage`). Workers always get
local paths: the S3 backend downloads the inputs to a temporary folder and uploads the result.

    storage = open_storage(settings)
    storage.put(job_id, "input.avi", uploaded_path)
    with storage.local_copies(job_id, ["input.avi"]) as local:
        restyle_video(local["input.avi"], storage.scratch(job_id, attempt), ...)
    storage.commit_result(job_id, scratch)

Beside the jobs, small files kept until deleted (custom classifiers), under their own keys:
    storage.put_blob("classifiers/anonymous/wave.npz", data); storage.get_blob(...)
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from service.settings import Settings

RESULT_NAME = "result.mp4"
_FILE_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_JOB_ID = re.compile(r"[0-9a-f]{32}")
# Keys of kept files: '/'-separated plain names, never a job id first (jobs expire, these do not).
_BLOB_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def check_names(job_id: str, name: str | None = None) -> None:
    """Refuse anything but a job id and a plain file name: they become paths and object keys."""
    if not _JOB_ID.fullmatch(job_id):
        raise ValueError(f"'{job_id}' is not a job id")
    if name is not None and not _FILE_NAME.match(name):
        raise ValueError(f"'{name}' is not a storage file name")


def check_blob_key(key: str) -> None:
    """Refuse keys that could leave their namespace or be taken for a job's folder."""
    parts = key.split("/")
    if not all(_BLOB_PART.match(part) and ".." not in part for part in parts) or (
        len(parts) < 2 or _JOB_ID.fullmatch(parts[0])
    ):
        raise ValueError(f"'{key}' is not a storage key")


def is_job_id(name: str) -> bool:
    return bool(_JOB_ID.fullmatch(name))


class RemoteFile(Protocol):
    """A result held elsewhere (an object store): its size, and its bytes read by range."""

    @property
    def size(self) -> int:
        """Its length in bytes (read-only, so a frozen dataclass field satisfies it)."""

    def iter_range(self, start: int, end: int) -> Iterator[bytes]:
        """The bytes start..end (inclusive), in chunks."""


class JobStorage(Protocol):
    def put(self, job_id: str, name: str, source: Path) -> Path | str:
        """Move `source` in as the job's file `name`; returns where it now is."""

    def put_bytes(self, job_id: str, name: str, data: bytes) -> Path | str:
        """Store `data` as the job's file `name`; returns where it now is."""

    def local_copies(
        self, job_id: str, names: list[str]
    ) -> AbstractContextManager[dict[str, Path]]:
        """Local paths of the job's files `names`, valid inside the block."""

    def discard(self, job_id: str, names: Iterable[str]) -> None:
        """Remove some of the job's files (its inputs, once the result exists)."""

    def scratch(self, job_id: str, attempt: str) -> Path:
        """Where one attempt writes its result before `commit_result`."""

    def commit_result(self, job_id: str, scratch: Path) -> Path | str:
        """Make a finished scratch file the job's result, atomically; returns where it is."""

    def result(self, job_id: str) -> Path | RemoteFile | None:
        """The finished result (a local file or a remote object), or None."""

    def delete(self, job_id: str) -> None:
        """Remove every file of the job; nothing to remove is fine."""

    def purge_older_than(self, age_s: float) -> int:
        """Delete jobs untouched for `age_s` seconds; returns how many (kept files stay)."""

    def put_blob(self, key: str, data: bytes) -> None:
        """Keep `data` under `key` (atomically) until `delete_blob`; it never expires."""

    def get_blob(self, key: str) -> bytes | None:
        """The bytes kept under `key`, or None."""

    def list_blobs(self, prefix: str) -> list[str]:
        """The keys kept under the folder `prefix`, sorted."""

    def delete_blob(self, key: str) -> bool:
        """Remove the file under `key`; False when there was none."""


class LocalStorage:
    """One folder per job under `root`: <root>/<job_id>/{input.*, style.*, result.mp4}."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _dir(self, job_id: str) -> Path:
        check_names(job_id)
        return self.root / job_id

    def _file(self, job_id: str, name: str) -> Path:
        check_names(job_id, name)
        return self._dir(job_id) / name

    def put(self, job_id: str, name: str, source: Path) -> Path:
        target = self._file(job_id, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(source, target)
        return target

    def put_bytes(self, job_id: str, name: str, data: bytes) -> Path:
        target = self._file(job_id, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return target

    def path(self, job_id: str, name: str) -> Path:
        return self._file(job_id, name)

    @contextmanager
    def local_copies(self, job_id: str, names: list[str]) -> Iterator[dict[str, Path]]:
        yield {name: self._file(job_id, name) for name in names}  # already local: no copy

    def discard(self, job_id: str, names: Iterable[str]) -> None:
        for name in names:
            self._file(job_id, name).unlink(missing_ok=True)

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
            if not is_job_id(folder.name):
                continue  # kept files (custom classifiers) never expire
            try:
                stale = folder.is_dir() and _newest_mtime(folder) < cutoff
            except FileNotFoundError:
                continue  # removed meanwhile by a cancel or another purge
            if stale:
                shutil.rmtree(folder, ignore_errors=True)
                purged += 1
        return purged

    def _blob(self, key: str) -> Path:
        check_blob_key(key)
        return self.root / key

    def put_blob(self, key: str, data: bytes) -> None:
        target = self._blob(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        temporary.write_bytes(data)
        os.replace(temporary, target)

    def get_blob(self, key: str) -> bytes | None:
        try:
            return self._blob(key).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def list_blobs(self, prefix: str) -> list[str]:
        folder = self._blob(prefix)
        if not folder.is_dir():
            return []
        return sorted(f"{prefix}/{p.name}" for p in folder.iterdir() if not p.name.startswith("."))

    def delete_blob(self, key: str) -> bool:
        try:
            self._blob(key).unlink()
        except (FileNotFoundError, NotADirectoryError):
            return False
        return True


def _newest_mtime(folder: Path) -> float:
    times = [folder.stat().st_mtime]
    times += [entry.stat().st_mtime for entry in folder.iterdir()]
    return max(times)


def open_storage(settings: Settings) -> JobStorage:
    """The backend `ACTIONSTYLE_STORAGE_URL` names (s3://bucket/prefix), else the shared folder."""
    url = settings.storage_url
    if not url:
        return LocalStorage(settings.storage_dir)
    if url.startswith("s3://"):
        from service.jobs.s3storage import S3Storage  # boto3 loads only when it is used

        return S3Storage.from_url(url, settings.s3_endpoint_url or None, settings.temp_dir)
    raise ValueError(f"unsupported storage url '{url}': use s3://bucket/prefix, or leave it empty")
