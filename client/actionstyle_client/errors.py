"""Exceptions the client raises: one per kind of failure, carrying the server's code and detail.

    try:
        client.classify("clip.mp4")
    except InputRejected as exc:     # 413, 415, 422: the file or a parameter
        print(exc.code, exc.detail)

Every one is an `ActionStyleError`; `exit_code` is what the `actionstyle` command exits with.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from actionstyle_client.models import JobStatus

# The command line's exit statuses (documented in `actionstyle --help`).
EXIT_OK = 0
EXIT_REFUSED = 1  # the server refused the request, or the job failed or was cancelled
EXIT_USAGE = 2  # bad command line or local file (argparse uses 2 too)
EXIT_UNAVAILABLE = 3  # unreachable, 503, 5xx, or still rate-limited after the retries
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), in-flight jobs cancelled


class ActionStyleError(Exception):
    """Base of every error this client raises."""

    exit_code = EXIT_REFUSED


class ServiceUnreachable(ActionStyleError):
    """No answer: the connection failed or dropped, after the retries."""

    exit_code = EXIT_UNAVAILABLE


class ApiError(ActionStyleError):
    """The server answered with an error: `status`, its `code` and `detail` (a sentence)."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{detail} ({status} {code})")
        self.status, self.code, self.detail = status, code, detail


class InputRejected(ApiError):
    """413, 415, 422: the upload or a parameter was refused."""


class Unauthorized(ApiError):
    """401: no valid API key (pass api_key= or set ACTIONSTYLE_API_KEY)."""


class NotFound(ApiError):
    """404: unknown model, style or job (or a job of another key)."""


class Conflict(ApiError):
    """409: a job not finished yet, finished without a result, or already finished."""


class RateLimited(ApiError):
    """429 still answered after the retries; `retry_after_s` is the server's last word."""

    exit_code = EXIT_UNAVAILABLE

    def __init__(self, status: int, code: str, detail: str, retry_after_s: float | None) -> None:
        super().__init__(status, code, detail)
        self.retry_after_s = retry_after_s


class ServiceUnavailable(ApiError):
    """503 (models or queue unavailable) or another 5xx, after the retries."""

    exit_code = EXIT_UNAVAILABLE


class JobFailed(ActionStyleError):
    """A job ended failed or cancelled; `status` is its last JobStatus."""

    def __init__(self, status: JobStatus) -> None:
        reason = f": {status.error}" if status.error else ""
        super().__init__(f"job {status.job_id} {status.state.value}{reason}")
        self.status = status


class JobTimeout(ActionStyleError, TimeoutError):
    """`Job.wait(timeout_s=...)` ran out before the job finished."""

    exit_code = EXIT_UNAVAILABLE


_BY_STATUS: dict[int, type[ApiError]] = {
    401: Unauthorized,
    404: NotFound,
    409: Conflict,
    413: InputRejected,
    415: InputRejected,
    422: InputRejected,
}


def retry_after_s(response: httpx.Response) -> float | None:
    """The Retry-After header in seconds (the delay form; the HTTP-date form is ignored)."""
    try:
        return max(0.0, float(response.headers["retry-after"]))
    except (KeyError, ValueError):
        return None


def error_from_response(response: httpx.Response) -> ApiError:
    """The typed exception for an error response; a body that is not a Problem still maps."""
    code, detail = f"http_{response.status_code}", response.reason_phrase
    try:
        body = response.json()
        code, detail = str(body["code"]), str(body["detail"])
    except (ValueError, KeyError, TypeError):
        text = response.text.strip()
        detail = text[:500] if text else detail
    status = response.status_code
    if status == 429:
        return RateLimited(status, code, detail, retry_after_s(response))
    if status >= 500:
        return ServiceUnavailable(status, code, detail)
    return _BY_STATUS.get(status, ApiError)(status, code, detail)
