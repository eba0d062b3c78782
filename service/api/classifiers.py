"""POST/GET/DELETE /classifiers: teach the service a new action from a few labelled clips.

A teach job runs on the workers like a stylize job (GET /jobs/{id} for progress, DELETE to
cancel); the classifier it makes is listed by GET /models and used by POST /classify?model=.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field

from service.api.auth import ClientDep, TooManyJobs, limit_new_jobs
from service.api.deps import JobsDep, ModelsDep, SettingsDep
from service.contract.manifest import ClassifierEntry, ModelsMissing
from service.custom.archive import ArchiveTooLarge, InvalidTrainingSet, UnsafeArchive
from service.custom.features import (
    Encoder,
    EncoderMissing,
    LazyEncoder,
    encoder_entry,
    load_encoder,
)
from service.custom.models import (
    MAX_NAME_LENGTH,
    CustomClassifiers,
    InvalidClassifierName,
    UnknownClassifier,
)
from service.custom.submit import ClassifierExists, TeachSubmission, submit_teach_job
from service.custom.upload import (
    ARCHIVE_FIELD,
    FILES_FIELD,
    LABELS_FIELD,
    NAME_FIELD,
    TrainingLimits,
    collect_clips,
    receive_training_upload,
)
from service.errors import problem_responses
from service.inference.memory import release_freed_heap
from service.jobs.queue import QueueFull, QueueUnavailable
from service.video.decode import VideoDecodeError, VideoLimitExceeded, VideoTooShort
from service.video.upload import (
    FieldTooLong,
    MalformedUpload,
    MissingUpload,
    StorageFull,
    UnsupportedVideo,
    UploadStalled,
    UploadTooLarge,
    idle_limited,
)

router = APIRouter(prefix="/classifiers", tags=["classifiers"])

ClassifierName = Annotated[
    str, Path(max_length=200, description="A custom classifier's name, as POST gave it.")
]

_BINARY = {"type": "string", "format": "binary", "contentMediaType": "application/octet-stream"}
_TEACH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [NAME_FIELD],
                    "properties": {
                        NAME_FIELD: {
                            "type": "string",
                            "maxLength": MAX_NAME_LENGTH,
                            "description": "The new classifier's name: letters, digits, _ and -.",
                        },
                        FILES_FIELD: {
                            "type": "array",
                            "items": _BINARY,
                            "description": (
                                "The clips (videos), each with one `labels` value; judged by "
                                "content, as `file` is for /classify"
                            ),
                        },
                        LABELS_FIELD: {
                            "type": "array",
                            "items": {"type": "string", "maxLength": 64},
                            "description": "The label of each file, in the same order.",
                        },
                        ARCHIVE_FIELD: {
                            **_BINARY,
                            "description": (
                                "Instead of files: one ZIP of <label>/<clip> folders, each "
                                "clip named with a video extension"
                            ),
                        },
                    },
                }
            }
        },
    }
}

TEACH_ERRORS: tuple[type[Exception], ...] = (
    UploadTooLarge,
    UploadStalled,
    StorageFull,
    ArchiveTooLarge,
    UnsupportedVideo,
    MissingUpload,
    MalformedUpload,
    FieldTooLong,
    InvalidTrainingSet,
    UnsafeArchive,
    InvalidClassifierName,
    VideoDecodeError,
    VideoLimitExceeded,
    VideoTooShort,
    RequestValidationError,
    ClassifierExists,
    EncoderMissing,
    ModelsMissing,
    QueueUnavailable,
)


class TeachJobCreated(BaseModel):
    job_id: str = Field(description="32 hexadecimal digits.")
    status_url: str = Field(description="GET it for the state and progress (clips done).")
    classifier: str = Field(description="The name the classifier will have.")
    classifier_url: str = Field(description="GET it once the job has succeeded.")


async def get_custom(request: Request) -> CustomClassifiers:
    """The custom classifiers in the job storage; the encoder loads on first use, once."""
    state = request.app.state
    if getattr(state, "custom", None) is None:
        settings = state.settings

        def load() -> Encoder:
            if state.models is None:
                raise ModelsMissing(state.models_missing)
            encoder = load_encoder(
                settings.models_dir,
                state.models.manifest,
                settings.ort_intra_op_threads,
                settings.ort_memory_arena,
            )
            release_freed_heap()  # what parsing the graph freed: ~16 MiB glibc would keep
            return encoder

        state.custom = CustomClassifiers(state.jobs.storage, LazyEncoder(load))
    return state.custom


CustomDep = Annotated[CustomClassifiers, Depends(get_custom)]


@router.post(
    "",
    response_model=TeachJobCreated,
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="teach_classifier",
    openapi_extra=_TEACH_BODY,
    # A teach job counts against the same per-key quota of new jobs as a stylize job.
    dependencies=[Depends(limit_new_jobs)],
    responses=problem_responses(*TEACH_ERRORS, TooManyJobs, QueueFull),
)
async def teach_classifier(
    request: Request,
    response: Response,
    settings: SettingsDep,
    models: ModelsDep,
    jobs: JobsDep,
    custom: CustomDep,
    client: ClientDep,
) -> TeachJobCreated:
    """Queue a job that teaches a new classifier from labelled clips (at least 2 labels x 3)."""
    encoder_entry(models.manifest)  # 503 before reading any clip when none is installed
    limits = TrainingLimits(
        max_clips=settings.teach_max_clips,
        max_bytes=settings.teach_max_upload_bytes,
        max_unpacked_bytes=settings.teach_max_unpacked_bytes,
        temp_dir=settings.temp_dir,
    )
    async with receive_training_upload(
        request.headers.get("content-type"),
        request.headers.get("content-length"),
        idle_limited(request.stream(), settings.upload_idle_timeout_s),
        limits,
    ) as upload:
        submission = TeachSubmission(
            upload.name, client, settings.decode_limits(), 2 * settings.job_time_limit_s
        )

        def submit():
            clips = collect_clips(upload, limits)
            return submit_teach_job(clips, submission, jobs, models.classifier_names, custom)

        record = await run_in_threadpool(submit)
    status_url = f"/jobs/{record.job_id}"
    response.headers["Location"] = status_url
    return TeachJobCreated(
        job_id=record.job_id,
        status_url=status_url,
        classifier=submission.name,
        classifier_url=f"/classifiers/{submission.name}",
    )


@router.get(
    "/{name}",
    response_model=ClassifierEntry,
    status_code=status.HTTP_200_OK,
    operation_id="get_classifier",
    responses=problem_responses(UnknownClassifier, RequestValidationError, ModelsMissing),
)
async def get_classifier(
    name: ClassifierName, custom: CustomDep, client: ClientDep
) -> ClassifierEntry:
    """A custom classifier: its labels, clip counts and cross-validated accuracy."""
    return await run_in_threadpool(custom.entry, name, client)


@router.delete(
    "/{name}",
    response_model=ClassifierEntry,
    status_code=status.HTTP_200_OK,
    operation_id="delete_classifier",
    responses=problem_responses(UnknownClassifier, RequestValidationError, ModelsMissing),
)
async def delete_classifier(
    name: ClassifierName, custom: CustomDep, client: ClientDep
) -> ClassifierEntry:
    """Delete one of your custom classifiers; answers with what it was."""
    return await run_in_threadpool(custom.delete, name, client)
