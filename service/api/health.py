"""GET /healthz (the process answers) and GET /readyz (it can do its work)."""

from __future__ import annotations

from typing import Literal

import redis
from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, Field
from redis.backoff import NoBackoff
from redis.retry import Retry

from service.api.deps import SettingsDep

router = APIRouter(prefix="", tags=["health"])

OK = "ok"


class Liveness(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, str] = Field(
        description="Each check's result: 'ok', or why it failed.",
        examples=[{"models": "ok", "redis": "ok"}],
    )


def _check_models(request: Request) -> str:
    return OK if request.app.state.models is not None else request.app.state.models_missing


def _check_redis(url: str, timeout_s: float) -> str:
    try:
        client = redis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),  # answer within the timeout, not after retries
        )
    except ValueError as exc:
        return f"the redis url is invalid: {exc}"
    try:
        client.ping()
    except redis.RedisError as exc:
        return f"redis does not answer: {exc}"
    finally:
        client.close()
    return OK


@router.get(
    "/healthz",
    response_model=Liveness,
    status_code=status.HTTP_200_OK,
    operation_id="check_liveness",
)
async def healthz() -> Liveness:
    """Answer as long as the process is alive."""
    return Liveness()


@router.get(
    "/readyz",
    response_model=Readiness,
    status_code=status.HTTP_200_OK,
    operation_id="check_readiness",
    responses={503: {"model": Readiness, "description": "A check failed; `checks` says which."}},
)
def readyz(request: Request, response: Response, settings: SettingsDep) -> Readiness:
    """Say whether the models are loaded and Redis answers."""
    checks = {
        "models": _check_models(request),
        "redis": _check_redis(settings.redis_url, settings.readiness_timeout_s),
    }
    if all(result == OK for result in checks.values()):
        return Readiness(status="ready", checks=checks)
    response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return Readiness(status="not_ready", checks=checks)
