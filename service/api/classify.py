"""POST /classify: recognise the action in an uploaded video clip."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from fastapi.concurrency import run_in_threadpool

from service.api.auth import ClientDep
from service.api.classifiers import CustomDep
from service.api.deps import ModelsDep, SettingsDep
from service.api.upload_body import VIDEO_UPLOAD_ERRORS, request_video, video_upload_body
from service.errors import problem_responses
from service.inference.classifier import (
    DEFAULT_TOP_K,
    InvalidTopK,
    TooManySegments,
    classify,
    resolve_top_k,
)
from service.inference.registry import UnknownModel
from service.inference.schemas import ClassifyResponse
from service.observability.metrics import record_classify

router = APIRouter(prefix="/classify", tags=["classify"])

_UPLOAD_BODY = video_upload_body()

ModelQuery = Annotated[
    str | None,
    Query(
        max_length=100,
        description="Classifier to run (a shipped one, or one of yours from POST /classifiers); "
        "the manifest's default when left out.",
    ),
]
TopKQuery = Annotated[
    int | None,
    Query(
        ge=1,
        description=f"How many labels to return, 1 to the model's number of labels; "
        f"{DEFAULT_TOP_K} by default, or every label when the model knows fewer.",
    ),
]


SegmentsQuery = Annotated[
    bool,
    Query(description="Also answer for each window of `window_s` seconds over the whole video."),
]
WindowQuery = Annotated[
    float,
    Query(gt=0.2, le=600, description="Window length in seconds for `segments=true`."),
]


@router.post(
    "",
    response_model=ClassifyResponse,
    status_code=status.HTTP_200_OK,
    operation_id="classify_video",
    openapi_extra=_UPLOAD_BODY,
    responses=problem_responses(*VIDEO_UPLOAD_ERRORS, UnknownModel, InvalidTopK, TooManySegments),
)
async def classify_video(
    request: Request,
    settings: SettingsDep,
    models: ModelsDep,
    custom: CustomDep,
    client: ClientDep,
    model: ModelQuery = None,
    top_k: TopKQuery = None,
    segments: SegmentsQuery = False,
    window_s: WindowQuery = 2.0,
) -> ClassifyResponse:
    """Recognise the action in an uploaded video clip (and, if asked, in each window of it)."""
    started = time.perf_counter()
    # A custom classifier is read from the job storage: off the event loop.
    classifier = await run_in_threadpool(custom.resolve, models, model, client)
    count = resolve_top_k(top_k, classifier)
    async with request_video(request, settings) as video:
        # Decoding and inference block for tens of milliseconds or more: keep them off the loop.
        result = await run_in_threadpool(
            classify,
            video.path,
            classifier,
            count,
            settings.decode_limits(),
            window_s if segments else None,
            request.app.state.inference_slots,
        )
    record_classify(result.model, result.timings_ms.decode, result.timings_ms.inference)
    return result.with_total_ms((time.perf_counter() - started) * 1000)
