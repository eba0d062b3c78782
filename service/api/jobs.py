"""GET/DELETE /jobs/{job_id} and GET /jobs/{job_id}/result: follow, fetch and cancel jobs."""

from __future__ import annotations

import asyncio
import time
from contextlib import suppress
from pathlib import PurePath
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, Response

from service.api.auth import ClientDep
from service.api.deps import JobEndsDep, JobsDep
from service.api.ranges import RangeNotSatisfiable, ranged_response
from service.errors import problem_responses
from service.jobs.ends import CHECK_S
from service.jobs.queue import (
    JobAlreadyFinished,
    JobHasNoResult,
    JobNotFinished,
    JobNotFound,
    QueueUnavailable,
    ResultIsClassifier,
)
from service.jobs.schemas import JobStatus
from service.jobs.state import FINISHED

router = APIRouter(prefix="/jobs", tags=["jobs"])

JobId = Annotated[
    str,
    Path(pattern=r"^[0-9a-f]{32}$", description="The id POST /stylize or /classifiers returned."),
]

MAX_WAIT_S = 30.0

WaitSeconds = Annotated[
    float,
    Query(
        ge=0,
        le=MAX_WAIT_S,
        description=(
            "Hold the answer while the job is queued or running, for at most this many seconds: "
            "it comes as soon as the job ends. Follow a job with `wait=1` in a loop to see its "
            "progress each second and its end at once. 0 (the default) answers at once."
        ),
    ),
]


@router.get(
    "/{job_id}",
    response_model=JobStatus,
    status_code=status.HTTP_200_OK,
    operation_id="get_job",
    responses=problem_responses(JobNotFound, RequestValidationError, QueueUnavailable),
)
async def get_job(
    job_id: JobId,
    jobs: JobsDep,
    ends: JobEndsDep,
    client: ClientDep,
    request: Request,
    wait: WaitSeconds = 0.0,
) -> JobStatus:
    """Report a job's state, progress and estimated time left; with `wait`, once it ends."""
    # A held request wakes when the job's end is announced (service/jobs/ends.py), and reads the
    # job again each CHECK_S in case an announcement was lost.
    deadline = time.monotonic() + wait
    with ends.watch(job_id) as ended:  # before the first read, so an end between is not missed
        record = await run_in_threadpool(jobs.status, job_id, client)
        while record.state not in FINISHED and (left := deadline - time.monotonic()) > 0:
            if await request.is_disconnected():
                break
            with suppress(TimeoutError):
                await asyncio.wait_for(ended.wait(), min(CHECK_S, left))
            ended.clear()
            record = await run_in_threadpool(jobs.status, job_id, client)
    return JobStatus.of(record)


@router.get(
    "/{job_id}/result",
    response_class=FileResponse,
    status_code=status.HTTP_200_OK,
    operation_id="get_job_result",
    responses={
        200: {"content": {"video/mp4": {}}, "description": "The stylised H.264 MP4."},
        206: {"content": {"video/mp4": {}}, "description": "The requested byte range."},
        **problem_responses(
            JobNotFound,
            JobNotFinished,
            JobHasNoResult,
            ResultIsClassifier,
            RangeNotSatisfiable,
            RequestValidationError,
            QueueUnavailable,
        ),
    },
)
# HEAD too (the headers of a GET, no body): download managers and `curl -I` ask it first.
@router.head("/{job_id}/result", include_in_schema=False)
async def get_job_result(
    job_id: JobId, jobs: JobsDep, client: ClientDep, request: Request
) -> Response:
    """Download the stylised video; HTTP Range requests are served, so players can seek.

    A teach job has no video: 409 `result_is_classifier` points to GET /classifiers/{name}.
    """
    stored, filename = await run_in_threadpool(jobs.result, job_id, client)
    if not isinstance(stored, PurePath):  # in object storage: streamed from it by range
        range_header = request.headers.get("range")
        head = request.method == "HEAD"
        return ranged_response(stored, range_header, "video/mp4", filename, head_only=head)
    return FileResponse(
        stored,
        media_type="video/mp4",
        filename=filename,
        content_disposition_type="inline",  # plays in a <video>; the page's link downloads it
    )


@router.delete(
    "/{job_id}",
    response_model=JobStatus,
    status_code=status.HTTP_200_OK,
    operation_id="cancel_job",
    responses=problem_responses(
        JobNotFound, JobAlreadyFinished, RequestValidationError, QueueUnavailable
    ),
)
def cancel_job(job_id: JobId, jobs: JobsDep, client: ClientDep) -> JobStatus:
    """Cancel a job: a queued one never starts; a running one stops and leaves no file."""
    return JobStatus.of(jobs.cancel(job_id, client))
