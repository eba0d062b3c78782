"""Optional API keys (`ACTIONSTYLE_API_KEYS`), and the limits on new jobs: the queue's room and
the per-key quota.

With no keys configured every route is open and every caller is the same anonymous client.
With keys, the API routes need `X-API-Key`; jobs remember a hash of the key that created them,
so one key never sees another's jobs. The limit is counted in Redis, shared by every API process.

    app.include_router(stylize.router, dependencies=[Depends(require_api_key)])
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Annotated

import redis
from fastapi import Depends, Security
from fastapi.security import APIKeyHeader

from service.api.deps import JobsDep, SettingsDep
from service.jobs.queue import QueueUnavailable

API_KEY_HEADER = "X-API-Key"
ANONYMOUS = ""
_RATE_KEY = "actionstyle:rate:stylize:{client}:{window}"
_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="One of the API keys.")


class ApiKeyRequired(PermissionError):
    """API keys are configured and the request has none, or an unknown one."""


class TooManyJobs(RuntimeError):
    """The key has created its quota of stylize jobs for this minute."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after_s)}


def client_id(key: str) -> str:
    """What jobs store instead of the key itself: a hash that cannot be turned back into it."""
    return hashlib.sha256(key.encode()).hexdigest()[:32]


async def require_api_key(
    settings: SettingsDep, key: Annotated[str | None, Security(_header)] = None
) -> str:
    """The caller's client id (anonymous when keys are off); 401 without a valid key."""
    # async: no I/O here, and a plain def would cost every API request a threadpool hop.
    keys = settings.api_key_set()
    if not keys:
        return ANONYMOUS
    if not key:
        raise ApiKeyRequired(
            f"this server needs an API key: send it in the {API_KEY_HEADER} header"
        )
    if not any(hmac.compare_digest(key.encode(), known.encode()) for known in keys):
        raise ApiKeyRequired(f"the {API_KEY_HEADER} header does not hold a valid API key")
    return client_id(key)


ClientDep = Annotated[str, Depends(require_api_key)]


def limit_new_jobs(client: ClientDep, settings: SettingsDep, jobs: JobsDep) -> None:
    """Refuse a new job while the queue is full; else count it against the caller's
    per-minute quota (a fixed window; without API keys every caller shares one quota)."""
    jobs.check_room(settings.max_queued_jobs)
    limit = settings.stylize_jobs_per_minute
    if not limit:
        return
    now = time.time()
    window = int(now // 60)
    key = _RATE_KEY.format(client=client or "anonymous", window=window)
    try:
        with jobs.store.client.pipeline() as pipe:
            pipe.incr(key)
            pipe.expire(key, 120)
            count, _ = pipe.execute()
    except redis.RedisError as exc:
        raise QueueUnavailable(f"the job queue is unavailable: {exc}") from exc
    if count > limit:
        retry_after = max(1, int((window + 1) * 60 - now + 0.999))
        raise TooManyJobs(
            f"this key may create {limit} stylize jobs per minute; try again in {retry_after} s",
            retry_after,
        )
