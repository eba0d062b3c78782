"""Sending a request again when that is safe: 408, 429 and 503 always; dropped connections if
idempotent.

    policy = RetryPolicy(attempts=5)
    response = send_with_retries(http, lambda: http.build_request("GET", "/models"), policy,
                                 idempotent=True)

A 429 or 503 means the server did nothing, a 408 that it dropped an upload that stalled on the
way, so even a POST that creates a job is sent again; the wait is the server's Retry-After when
it gives one, else exponential backoff with jitter. A
connection that could not be opened is retried for every call; one that dropped after the request
went out only for calls that are safe to repeat (a second POST /stylize would queue a second job).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from actionstyle_client.errors import ServiceUnreachable, error_from_response, retry_after_s

RETRY_STATUSES = frozenset({408, 429, 503})
# The request never reached the server: safe to send again whatever it does.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# The connection broke after (part of) the request went out.
DROPPED = (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadTimeout)


# on_retry(why, wait_s): told before each wait, so a person is not left looking at nothing.
OnRetry = Callable[[str, float], None]


@dataclass(frozen=True)
class RetryPolicy:
    """How many times to try, how long to back off, the longest Retry-After to honour, and
    whom to tell about each retry."""

    attempts: int = 5
    backoff_s: float = 0.5
    max_backoff_s: float = 20.0
    max_retry_after_s: float = 120.0
    on_retry: OnRetry | None = None

    def backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff before try `attempt + 1` (attempt counts from 1)."""
        ceiling = min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)

    def pause(self, sleep: Sleep, why: str, wait_s: float) -> None:
        if self.on_retry is not None:
            self.on_retry(why, wait_s)
        sleep(wait_s)


Sleep = Callable[[float], None]


def send_with_retries(
    http: httpx.Client,
    build: Callable[[], httpx.Request],
    policy: RetryPolicy,
    *,
    idempotent: bool,
    stream: bool = False,
    sleep: Sleep = time.sleep,
) -> httpx.Response:
    """Send `build()` (called afresh per try, so file bodies reopen) and return a 2xx response.

    Raises the typed ApiError for an error answer, ServiceUnreachable when no answer came.
    With `stream`, a 2xx response is returned unread; the caller closes it.
    """
    attempt = 0
    while True:
        attempt += 1
        last = attempt >= policy.attempts
        try:
            response = http.send(build(), stream=stream)
        except NOT_SENT + DROPPED as exc:
            if last or (isinstance(exc, DROPPED) and not idempotent):
                raise ServiceUnreachable(f"{http.base_url} did not answer: {exc!r}") from exc
            policy.pause(
                sleep,
                f"{http.base_url} did not answer ({type(exc).__name__})",
                policy.backoff(attempt),
            )
            continue
        if response.is_success:
            return response
        response.read()
        response.close()
        error = error_from_response(response)
        if last or response.status_code not in RETRY_STATUSES:
            raise error
        wait = retry_after_s(response)
        if wait is not None and wait > policy.max_retry_after_s:
            raise error  # the server asks for longer than we are willing to block
        policy.pause(sleep, str(error), policy.backoff(attempt) if wait is None else wait)
