"""Job files in S3-compatible object storage, so API and workers on different hosts share no disk.

Objects: <prefix>/<job_id>/{input.*, style.img, result.mp4}. Credentials and region come from
boto3's usual sources (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, a role);
`endpoint_url` points it at MinIO, Ceph, R2 and the like.

    storage = S3Storage.from_url("s3://my-bucket/actionstyle", endpoint_url=None, temp_dir=None)
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from service.jobs.storage import RESULT_NAME, check_blob_key, check_names, is_job_id

_CHUNK = 256 * 1024
# Listing a whole bucket is slow: purge at most this often per process (a bucket lifecycle
# rule on the prefix is the better tool for large deployments; see the README).
_PURGE_EVERY_S = 300.0


def _missing(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}


@dataclass(frozen=True)
class S3Object:
    """A finished result in the bucket, read by byte range (so players can seek)."""

    client: Any
    bucket: str
    key: str
    size: int

    def iter_range(self, start: int, end: int) -> Iterator[bytes]:
        response = self.client.get_object(
            Bucket=self.bucket, Key=self.key, Range=f"bytes={start}-{end}"
        )
        body = response["Body"]
        try:
            yield from body.iter_chunks(_CHUNK)
        finally:
            body.close()


class S3Storage:
    def __init__(self, client: Any, bucket: str, prefix: str, temp_dir: Path | None) -> None:
        self.client, self.bucket, self.prefix = client, bucket, prefix.strip("/")
        self.temp_dir = temp_dir
        self._last_purge = 0.0
        self._purge_lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, endpoint_url: str | None, temp_dir: Path | None) -> S3Storage:
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ValueError(f"'{url}' is not an s3://bucket/prefix url")
        config = Config(retries={"max_attempts": 5, "mode": "standard"})
        client = boto3.client("s3", endpoint_url=endpoint_url, config=config)
        return cls(client, parsed.netloc, parsed.path, temp_dir)

    def _key(self, job_id: str, name: str | None = None) -> str:
        check_names(job_id, name)
        parts = [self.prefix] if self.prefix else []
        return "/".join([*parts, job_id, *([name] if name else [])])

    def _url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def put(self, job_id: str, name: str, source: Path) -> str:
        key = self._key(job_id, name)
        self.client.upload_file(str(source), self.bucket, key)
        source.unlink(missing_ok=True)
        return self._url(key)

    def put_bytes(self, job_id: str, name: str, data: bytes) -> str:
        key = self._key(job_id, name)
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)
        return self._url(key)

    @contextmanager
    def local_copies(self, job_id: str, names: list[str]) -> Iterator[dict[str, Path]]:
        folder = Path(tempfile.mkdtemp(prefix=f"job-{job_id}-", dir=self.temp_dir))
        try:
            local = {}
            for name in names:
                local[name] = folder / name
                try:
                    self.client.download_file(self.bucket, self._key(job_id, name), local[name])
                except ClientError as exc:
                    if _missing(exc):  # cancelled or expired meanwhile
                        raise FileNotFoundError(f"job {job_id} has no file {name}") from exc
                    raise
            yield local
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def discard(self, job_id: str, names: Iterable[str]) -> None:
        for name in names:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(job_id, name))

    def scratch(self, job_id: str, attempt: str) -> Path:
        check_names(job_id)
        folder = Path(self.temp_dir or tempfile.gettempdir()) / "actionstyle-results"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{job_id}-{attempt}.mp4"

    def commit_result(self, job_id: str, scratch: Path) -> str:
        # One PUT is atomic: readers see the old state or the whole result, never a part.
        key = self._key(job_id, RESULT_NAME)
        self.client.upload_file(
            str(scratch), self.bucket, key, ExtraArgs={"ContentType": "video/mp4"}
        )
        return self._url(key)

    def result(self, job_id: str) -> S3Object | None:
        key = self._key(job_id, RESULT_NAME)
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        return S3Object(self.client, self.bucket, key, int(head["ContentLength"]))

    def _objects(self, prefix: str) -> Iterator[dict[str, Any]]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        )
        for page in pages:
            yield from page.get("Contents", [])

    def _delete_keys(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):  # DeleteObjects takes 1000 keys at most
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch})

    def delete(self, job_id: str) -> None:
        keys = [obj["Key"] for obj in self._objects(self._key(job_id) + "/")]
        if keys:
            self._delete_keys(keys)

    def purge_older_than(self, age_s: float) -> int:
        with self._purge_lock:
            if time.monotonic() - self._last_purge < _PURGE_EVERY_S:
                return 0
            self._last_purge = time.monotonic()
        cutoff = time.time() - age_s
        newest: dict[str, float] = {}
        keys: dict[str, list[str]] = {}
        root = f"{self.prefix}/" if self.prefix else ""
        for obj in self._objects(root):
            job_id = obj["Key"][len(root) :].split("/", 1)[0]
            newest[job_id] = max(newest.get(job_id, 0.0), obj["LastModified"].timestamp())
            keys.setdefault(job_id, []).append(obj["Key"])
        # Only job folders expire: kept files (custom classifiers) stay until deleted.
        stale = [job_id for job_id, t in newest.items() if t < cutoff and is_job_id(job_id)]
        for job_id in stale:
            self._delete_keys(keys[job_id])
        return len(stale)

    def _blob_key(self, key: str) -> str:
        check_blob_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put_blob(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._blob_key(key), Body=data)

    def get_blob(self, key: str) -> bytes | None:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._blob_key(key))
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        return response["Body"].read()

    def list_blobs(self, prefix: str) -> list[str]:
        root = self._blob_key(prefix) + "/"
        strip = len(self._blob_key(prefix)) - len(prefix)
        return sorted(obj["Key"][strip:] for obj in self._objects(root))

    def delete_blob(self, key: str) -> bool:
        full = self._blob_key(key)
        try:
            self.client.head_object(Bucket=self.bucket, Key=full)
        except ClientError as exc:
            if _missing(exc):
                return False
            raise
        self.client.delete_object(Bucket=self.bucket, Key=full)
        return True
