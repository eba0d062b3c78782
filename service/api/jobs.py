"""GET/DELETE /jobs/{job_id} and GET /jobs/{job_id}/result: follow, fetch and cancel jobs."""

from __future__ import annotations

from pathlib import PurePath
from typing import Annotated

from fastapi import APIRouter, Path, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, Response

from service.api.auth import ClientDep
from service.api.deps import JobsDep
from service.api.ranges import RangeNotSatisfiable, ranged_response
from service.errors import problem_responses
from service.jobs.queue import (
    JobAlreadyFinished,
    JobHasNoResult,
    JobNotFinished,
    JobNotFound,
    QueueUnavailable,
    ResultIsClassifier,
)
from service.jobs.schemas import JobStatus

router = APIRouter(prefix="/jobs", tags=["jobs"])

JobId = Annotated[
    str,
    Path(pattern=r"^[0-9a-f]{32}$", description="The id POST /stylize or /classifiers returned."),
]


@router.get(
    "/{job_id}",
    response_model=JobStatus,
    status_code=status.HTTP_200_OK,
    operation_id="get_job",
    responses=problem_responses(JobNotFound, RequestValidationError, QueueUnavailable),
)
def get_job(job_id: JobId, jobs: JobsDep, client: ClientDep) -> JobStatus:
    """Report a job's state, progress and estimated time left."""
    return JobStatus.of(jobs.status(job_id, client))


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
async def get_job_result(
    job_id: JobId, jobs: JobsDep, client: ClientDep, request: Request
) -> Response:
    """Download the stylised video; HTTP Range requests are served, so players can seek.

    A teach job has no video: 409 `result_is_classifier` points to GET /classifiers/{name}.
    """
    stored = await run_in_threadpool(jobs.result, job_id, client)
    filename = f"stylized-{job_id}.mp4"
    if not isinstance(stored, PurePath):  # in object storage: streamed from it by range
        return ranged_response(stored, request.headers.get("range"), "video/mp4", filename)
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
