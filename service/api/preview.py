"""POST /stylize/preview: one picture restyled at once, so a person can dial style and strength.

A router of its own: previews need an API key like every API route, but they are not jobs, so
they do not count against the per-key quota of new stylize jobs (a slider would use it up in
seconds). They are bounded instead by size (one picture, scaled to 480 px) and by the process's
inference slots, as /classify is.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from fastapi import APIRouter, Request, Response, status
from fastapi.concurrency import run_in_threadpool

from service.api.deps import ModelsDep, SettingsDep, StyleEnginesDep
from service.api.stylize import (
    PAINTING_FIELD,
    STRENGTH_FIELD,
    STYLE_CHOICE_ERRORS,
    STYLE_CHOICE_FIELDS,
    STYLE_FIELD,
    STYLE_NAME_BYTES,
)
from service.api.upload_body import (
    VIDEO_UPLOAD_ERRORS,
    binary_field,
    multipart_body,
    request_video,
    video_upload_body,
)
from service.contract.manifest import ModelsMissing
from service.errors import problem_responses
from service.inference.preview import (
    MAX_PREVIEW_BYTES,
    PREVIEW_MAX_SIDE,
    InvalidPreviewImage,
    PreviewBusy,
    read_picture,
    render_preview,
)
from service.inference.strength import parse_strength
from service.inference.styles import StyleEngines
from service.inference.stylize import FramesFn
from service.jobs.queue import check_style_choice
from service.video.still import still_frame
from service.video.upload import (
    EmptyUpload,
    FieldTooLong,
    MalformedUpload,
    MissingUpload,
    UploadStalled,
    UploadTooLarge,
    field_text,
    idle_limited,
    receive_form_fields,
)

router = APIRouter(prefix="/stylize", tags=["stylize"])

IMAGE_FIELD = "image"
_STRENGTH_BYTES = 200

_PICTURE = binary_field(
    f"The picture (JPEG, PNG, WebP; at most {MAX_PREVIEW_BYTES // 2**20} MiB), e.g. a frame "
    f"of your video; scaled to {PREVIEW_MAX_SIDE} px on its long side."
)
_PREVIEW_BODY = multipart_body([IMAGE_FIELD], {IMAGE_FIELD: _PICTURE, **STYLE_CHOICE_FIELDS})
_JPEG: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/jpeg": {}}, "description": "The picture (JPEG)."}
}
# Where the preview's frame is taken, as the page takes it when the browser can decode the video.
FRAME_AT_S = 1.0


@router.post(
    "/preview",
    response_class=Response,
    status_code=status.HTTP_200_OK,
    operation_id="preview_style",
    openapi_extra=_PREVIEW_BODY,
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "The restyled picture (JPEG)."},
        **problem_responses(
            UploadTooLarge,
            UploadStalled,
            MissingUpload,
            MalformedUpload,
            EmptyUpload,
            FieldTooLong,
            InvalidPreviewImage,
            *STYLE_CHOICE_ERRORS,
            ModelsMissing,
            PreviewBusy,
        ),
    },
)
async def preview_style(
    request: Request, settings: SettingsDep, models: ModelsDep, engines: StyleEnginesDep
) -> Response:
    """Restyle one picture (a frame of your video) at once, to preview a style and strength."""
    fields = await receive_form_fields(
        request.headers.get("content-type"),
        request.headers.get("content-length"),
        idle_limited(request.stream(), settings.upload_idle_timeout_s),
        {
            IMAGE_FIELD: MAX_PREVIEW_BYTES,
            STYLE_FIELD: STYLE_NAME_BYTES,
            PAINTING_FIELD: settings.max_style_image_bytes,
            STRENGTH_FIELD: _STRENGTH_BYTES,
        },
        required=IMAGE_FIELD,
    )
    strength = parse_strength(field_text(fields.get(STRENGTH_FIELD)))
    style, painting = field_text(fields.get(STYLE_FIELD)), fields.get(PAINTING_FIELD)
    frame = await run_in_threadpool(read_picture, fields[IMAGE_FIELD].data)
    painting_bgr = await run_in_threadpool(check_style_choice, style, painting, models.styles)

    def engine() -> FramesFn:
        return _engine(engines, style, painting_bgr)

    jpeg = await run_in_threadpool(
        render_preview, frame, engine, strength, request.app.state.inference_slots
    )
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.post(
    "/preview/frame",
    response_class=Response,
    status_code=status.HTTP_200_OK,
    operation_id="preview_frame",
    openapi_extra=video_upload_body(),
    responses={**_JPEG, **problem_responses(*VIDEO_UPLOAD_ERRORS)},
)
async def preview_frame(request: Request, settings: SettingsDep) -> Response:
    """One frame of a video, 1 s in, as a player shows it (upright, square pixels, HDR mapped
    to SDR), as a JPEG of at most 480 px: the picture to preview a style on when the browser
    cannot decode the video itself (AVI, MPEG, and HEVC in most browsers)."""
    async with request_video(request, settings) as video:
        picture = await run_in_threadpool(
            still_frame, video.path, FRAME_AT_S, PREVIEW_MAX_SIDE, settings.decode_limits()
        )
    bgr = cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)
    jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


def _engine(engines: StyleEngines, style: str | None, painting_bgr: np.ndarray | None) -> FramesFn:
    if painting_bgr is None:
        return engines.named(style or "")
    return engines.painting(cv2.cvtColor(painting_bgr, cv2.COLOR_BGR2RGB))
