"""GET /metrics: Prometheus exposition text (see service.observability.metrics)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from fastapi.concurrency import run_in_threadpool

from service.api.deps import JobsDep
from service.errors import Problem
from service.observability.metrics import render_metrics

router = APIRouter(prefix="", tags=["health"])


@router.get(
    "/metrics",
    response_class=Response,
    status_code=status.HTTP_200_OK,
    operation_id="get_metrics",
    responses={
        200: {"content": {"text/plain": {}}, "description": "Prometheus text format."},
        # Redis down is not an error here: `actionstyle_redis_up 0` says so, with a 200.
        500: {"model": Problem, "description": "`internal_error`: the cause is in the log."},
    },
)
async def metrics(request: Request, jobs: JobsDep) -> Response:
    """Requests, latencies, classify time, jobs by state, queue length, frames stylised."""
    body, content_type = await run_in_threadpool(render_metrics, jobs.store.client)
    return Response(body, media_type=content_type)
