"""The synchronous Python client: classify a clip, restyle one or teach a classifier as a job.

    with Client("http://127.0.0.1:8000", api_key="...") as client:
        print(client.classify("clip.mp4").top_label)
        client.stylize("clip.mp4", style="vangogh").wait(progress=print).download("out.mp4")
        client.stylize("clip.mp4", style="vangogh", strength=0.5)   # half-way to the original
        job = client.teach("wave", clips={"wave": [...], "other": [...]}).wait(progress=print)
        print(job.classifier().cross_validated_top1)      # = client.classifiers.get("wave")
        client.classify("clip.mp4", model="wave"); client.classifiers.delete("wave")

The URL and key default to ACTIONSTYLE_URL and ACTIONSTYLE_API_KEY. Uploads are streamed from
disk in chunks (a 200 MB clip, or a teach job's many clips, is never held in memory) and
reopened for each retry; `on_upload=lambda sent, total: ...` follows them (bytes; a retry
starts again from 0).
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Self
from urllib.parse import quote

import httpx

from actionstyle_client.errors import (
    JobFailed,
    JobTimeout,
    RateLimited,
    ServiceUnavailable,
    ServiceUnreachable,
)
from actionstyle_client.models import (
    ClassifierEntry,
    ClassifyResult,
    JobCreated,
    JobStatus,
    ModelsInfo,
    TeachJobCreated,
)
from actionstyle_client.retry import DROPPED, RetryPolicy, Sleep, send_with_retries

DEFAULT_URL = "http://127.0.0.1:8000"
URL_VARIABLE, KEY_VARIABLE = "ACTIONSTYLE_URL", "ACTIONSTYLE_API_KEY"
API_KEY_HEADER = "X-API-Key"
# Reading an answer may take long: the server decodes and classifies a whole upload first.
DEFAULT_TIMEOUT = httpx.Timeout(300.0, connect=10.0)
MAX_WAIT_S = 30.0  # the longest the service holds GET /jobs/{id}?wait=

Progress = Callable[[JobStatus], None]
UploadProgress = Callable[[int, int], None]  # (bytes sent, bytes in all)
PathLike = str | os.PathLike[str]


class Client:
    """One connection pool to one service; close it (or use `with`) when done."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.base_url = (base_url or os.environ.get(URL_VARIABLE) or DEFAULT_URL).rstrip("/")
        key = api_key if api_key is not None else os.environ.get(KEY_VARIABLE, "")
        headers = {API_KEY_HEADER: key} if key else {}
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )
        self.jobs = Jobs(self)
        self.classifiers = Classifiers(self)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def classify(
        self,
        path: str | os.PathLike[str],
        model: str | None = None,
        top_k: int | None = None,
        segments: bool = False,
        window_s: float | None = None,
        on_upload: UploadProgress | None = None,
    ) -> ClassifyResult:
        """Recognise the action in a clip; `top_k` None takes the server's default (5)."""
        params: dict[str, Any] = {"segments": "true" if segments else "false"}
        optional = {"model": model, "top_k": top_k, "window_s": window_s}
        params |= {name: value for name, value in optional.items() if value is not None}
        # Classifying changes nothing on the server, so a dropped connection is retried.
        response = self._upload(
            "/classify", [("file", Path(path))], {}, params, idempotent=True, on_upload=on_upload
        )
        return ClassifyResult.from_json(response.json())

    def stylize(
        self,
        path: str | os.PathLike[str],
        style: str | None = None,
        style_image: str | os.PathLike[str] | None = None,
        strength: float = 1.0,
        on_upload: UploadProgress | None = None,
    ) -> Job:
        """Queue a clip to be restyled with a named style or your own painting; returns its Job.

        `strength` dials the style: 1 the full style, 0.5 half-way to the original (above 0,
        at most 1; the server refuses others with InputRejected, code `invalid_strength`).
        """
        if (style is None) == (style_image is None):
            raise ValueError("give exactly one of style= or style_image=")
        if not 0.0 < strength <= 1.0:  # NaN too: refused here rather than after the upload
            raise ValueError(f"strength must be above 0 and at most 1, not {strength}")
        files = [("file", Path(path))]
        if style_image is not None:
            files.append(("style_image", Path(style_image)))
        data: dict[str, str | list[str]] = {"style": style} if style is not None else {}
        data["strength"] = repr(float(strength))
        # Not idempotent: a POST repeated after a dropped answer could queue the job twice.
        response = self._upload("/stylize", files, data, {}, idempotent=False, on_upload=on_upload)
        return Job(self, JobCreated.from_json(response.json()).job_id)

    def teach(
        self,
        name: str,
        clips: Mapping[str, Sequence[PathLike]] | None = None,
        archive: PathLike | None = None,
        on_upload: UploadProgress | None = None,
    ) -> TeachJob:
        """Queue a job that teaches a new classifier `name`; returns its TeachJob.

        Give `clips` (label -> clip paths; at least 2 labels with 3 clips each) or one ZIP
        `archive` of `<label>/<clip>` folders. Every clip goes in one multipart body, each
        streamed from disk. Once `wait()` returns, `job.classifier()` describes the classifier
        and `classify(..., model=name)` uses it.
        """
        data: dict[str, str | list[str]] = {"name": name}
        if archive is not None and clips is None:
            files = [("archive", Path(archive))]
        elif clips is not None and archive is None:
            pairs = [(label, Path(path)) for label, paths in clips.items() for path in paths]
            if not pairs:
                raise ValueError("clips= holds no clip")
            files = [("files", path) for _, path in pairs]
            data["labels"] = [label for label, _ in pairs]  # one per file, in the same order
        else:
            raise ValueError("give exactly one of clips= or archive=")
        # Not idempotent: a POST repeated after a dropped answer could queue a second job.
        response = self._upload(
            "/classifiers", files, data, {}, idempotent=False, on_upload=on_upload
        )
        created = TeachJobCreated.from_json(response.json())
        return TeachJob(self, created.job_id, created.classifier)

    def models(self) -> ModelsInfo:
        """The installed classifiers (with their metrics) and styles."""
        return ModelsInfo.from_json(self._request("GET", "/models").json())

    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """An idempotent call without a body (GET, DELETE), read whole."""
        return send_with_retries(
            self._http,
            lambda: self._http.build_request(method, url, **kwargs),
            self.retry,
            idempotent=True,
            sleep=self._sleep,
        )

    def _upload(
        self,
        url: str,
        files: Sequence[tuple[str, Path]],
        data: Mapping[str, str | list[str]],
        params: Mapping[str, Any],
        *,
        idempotent: bool,
        on_upload: UploadProgress | None = None,
    ) -> httpx.Response:
        """POST multipart files streamed from disk; each try reopens them from the start.

        `files` are (field, path) pairs: one field may repeat (a teach job's `files`).
        """
        for _, path in files:
            if not path.is_file():
                raise FileNotFoundError(f"no such file: {path}")
        opened: list[IO[bytes]] = []
        total = sum(path.stat().st_size for _, path in files)

        def build() -> httpx.Request:
            _close_all(opened)
            handles = []
            sent = _Sent(total, on_upload)
            for field, path in files:
                handle: IO[bytes] = (
                    path.open("rb") if on_upload is None else _CountedReader(path, sent)
                )
                opened.append(handle)
                handles.append((field, (path.name, handle, "application/octet-stream")))
            return self._http.build_request("POST", url, params=params, data=data, files=handles)

        try:
            return send_with_retries(
                self._http, build, self.retry, idempotent=idempotent, sleep=self._sleep
            )
        finally:
            _close_all(opened)

    def _download(self, url: str, dest: Path) -> Path:
        """Stream a GET to `dest` through `dest.part`; a dropped transfer resumes by Range."""
        part = dest.with_name(dest.name + ".part")
        part.unlink(missing_ok=True)
        attempt = 0
        while True:
            attempt += 1
            have = part.stat().st_size if part.exists() else 0
            headers = {"Range": f"bytes={have}-"} if have else {}
            response = send_with_retries(
                self._http,
                lambda: self._http.build_request("GET", url, headers=headers),  # noqa: B023
                self.retry,
                idempotent=True,
                stream=True,
                sleep=self._sleep,
            )
            mode = "ab" if response.status_code == 206 else "wb"
            try:
                with part.open(mode) as out:
                    for chunk in response.iter_bytes():  # unbuffered: a break keeps all it got
                        out.write(chunk)
            except DROPPED as exc:
                if attempt >= self.retry.attempts:
                    raise ServiceUnreachable(f"the download of {url} broke: {exc!r}") from exc
                why = f"the download broke ({type(exc).__name__}); it resumes where it stopped"
                self.retry.pause(self._sleep, why, self.retry.backoff(attempt))
                continue
            finally:
                response.close()
            return part.replace(dest)


class Classifiers:
    """Your custom classifiers by name: `client.classifiers.get(name)`, `.delete(name)`."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def get(self, name: str) -> ClassifierEntry:
        """A taught classifier: labels, clips per label, cross-validated accuracy (404 if none)."""
        return ClassifierEntry.from_json(self._client._request("GET", _classifier_url(name)).json())

    def delete(self, name: str) -> ClassifierEntry:
        """Delete one of your classifiers; returns what it was (NotFound if you have none)."""
        response = self._client._request("DELETE", _classifier_url(name))
        return ClassifierEntry.from_json(response.json())


def _classifier_url(name: str) -> str:
    return f"/classifiers/{quote(name, safe='')}"


class Jobs:
    """Jobs (stylize, teach) by id: `client.jobs.get(id)`, `.cancel(id)`, `.job(id)`."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def get(self, job_id: str, wait_s: float = 0.0) -> JobStatus:
        """The job's status; with `wait_s`, held by the service until the job ends or `wait_s`
        seconds pass (at most MAX_WAIT_S), whichever comes first."""
        params = {"wait": min(wait_s, MAX_WAIT_S)} if wait_s > 0 else {}
        response = self._client._request("GET", f"/jobs/{job_id}", params=params)
        return JobStatus.from_json(response.json())

    def cancel(self, job_id: str) -> JobStatus:
        """Cancel a queued or running job (409 Conflict if it has already finished)."""
        return JobStatus.from_json(self._client._request("DELETE", f"/jobs/{job_id}").json())

    def job(self, job_id: str) -> Job:
        return Job(self._client, job_id)


# What a status request can still end in after its retries while the service is away.
AWAY = (ServiceUnreachable, ServiceUnavailable, RateLimited)


class ServiceAway:
    """Lets status requests keep failing for `patience_s` while jobs are followed: the jobs run
    on through an API restart or a dropped network, so following them should too.

        away = ServiceAway(client, 120)
        try: status = job.status()
        except AWAY as exc: away.failed(exc, "job x")   # re-raises past the patience, else pauses
        else: away.answered()
    """

    def __init__(self, client: Client, patience_s: float) -> None:
        self._client, self.patience_s = client, patience_s
        self._since: float | None = None

    def failed(self, error: Exception, following: str) -> None:
        now = time.monotonic()
        self._since = self._since or now
        if now - self._since >= self.patience_s:
            raise error
        why = f"lost contact while following {following} ({error})"
        self._client.retry.pause(self._client._sleep, why, self._client.retry.backoff(3))

    def answered(self) -> None:
        self._since = None


class Job:
    """A handle on one job: follow it, cancel it, download a stylize job's MP4."""

    def __init__(self, client: Client, job_id: str) -> None:
        self._client, self.id = client, job_id

    def __repr__(self) -> str:
        return f"Job({self.id!r})"

    def status(self, wait_s: float = 0.0) -> JobStatus:
        return self._client.jobs.get(self.id, wait_s)

    def cancel(self) -> JobStatus:
        return self._client.jobs.cancel(self.id)

    def wait(
        self,
        progress: Progress | None = None,
        poll_s: float = 0.5,
        timeout_s: float | None = None,
        patience_s: float = 120.0,
    ) -> Self:
        """Follow the job until it ends, calling `progress(status)` about every `poll_s`; returns
        self as soon as the job ends (the service holds each request up to `poll_s`).

        The job runs on while the service is away (restarting, or the network dropped), so status
        requests that still fail after their retries are asked again for up to `patience_s`.
        Raises JobFailed when it failed or was cancelled, JobTimeout after `timeout_s`.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        away = ServiceAway(self._client, patience_s)
        while True:
            asked = time.monotonic()
            hold = min(poll_s, MAX_WAIT_S)
            if deadline is not None:
                hold = max(0.0, min(hold, deadline - asked))
            try:
                status = self.status(wait_s=hold)
            except AWAY as exc:
                away.failed(exc, f"job {self.id}")
                continue
            away.answered()
            if progress is not None:
                progress(status)
            if status.state.finished:
                if status.state != "succeeded":
                    raise JobFailed(status)
                return self
            if deadline is not None and time.monotonic() >= deadline:
                raise JobTimeout(f"job {self.id} still {status.state.value} after {timeout_s} s")
            # A service older than `wait` answers at once: ask again after the rest of poll_s.
            self._client._sleep(max(0.0, poll_s - (time.monotonic() - asked)))

    def download(self, dest: str | os.PathLike[str]) -> Path:
        """Save the stylised MP4 at `dest` (written whole or not at all); returns the path."""
        return self._client._download(f"/jobs/{self.id}/result", Path(dest))


class TeachJob(Job):
    """A teach job's handle: its result is the classifier `name`, not a file to download."""

    def __init__(self, client: Client, job_id: str, name: str) -> None:
        super().__init__(client, job_id)
        self.name = name

    def __repr__(self) -> str:
        return f"TeachJob({self.id!r}, name={self.name!r})"

    def classifier(self) -> ClassifierEntry:
        """The classifier the job taught (NotFound until the job has succeeded)."""
        return self._client.classifiers.get(self.name)


class _Sent:
    """Bytes of the files read into the request so far, reported to `on_upload`."""

    def __init__(self, total: int, on_upload: UploadProgress | None) -> None:
        self.total, self.on_upload, self.bytes = total, on_upload, 0

    def add(self, count: int) -> None:
        if count and self.on_upload is not None:
            self.bytes += count
            self.on_upload(self.bytes, self.total)


class _CountedReader(io.BufferedReader):
    """A file opened for reading that counts what the request body reads from it."""

    def __init__(self, path: Path, sent: _Sent) -> None:
        super().__init__(io.FileIO(path, "rb"))
        self._sent = sent

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self._sent.add(len(data))
        return data


def _close_all(handles: list[IO[bytes]]) -> None:
    for handle in handles:
        handle.close()
    handles.clear()
