"""POST /stylize: queue a video to be restyled with a named style or an uploaded painting."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from fastapi.concurrency import run_in_threadpool

from service.api.auth import ClientDep
from service.api.deps import JobsDep, ModelsDep, SettingsDep
from service.api.upload_body import (
    VIDEO_UPLOAD_ERRORS,
    binary_field,
    request_video,
    video_upload_body,
)
from service.errors import problem_responses
from service.inference.strength import InvalidStrength, parse_strength
from service.inference.styles import UnknownStyle
from service.jobs.limits import stylize_time_limits
from service.jobs.queue import InvalidStyleChoice, InvalidStyleImage, QueueUnavailable
from service.jobs.schemas import JobCreated
from service.video.decode import check_playable
from service.video.upload import (
    FieldTooLong,
    field_text,
)

router = APIRouter(prefix="/stylize", tags=["stylize"])

STYLE_FIELD, PAINTING_FIELD, STRENGTH_FIELD = "style", "style_image", "strength"
STYLE_NAME_BYTES = 200
_STRENGTH_BYTES = 32

# The form value that dials the style, shared with POST /stylize/preview.
STRENGTH_SCHEMA = {
    "type": "number",
    "exclusiveMinimum": 0,
    "maximum": 1,
    "default": 1,
    "description": "How strongly the style applies: 1 the full style, 0.5 half-way between "
    "the original and the style; 0 is refused, as it would change nothing.",
}

# The form fields that choose and dial the style, and how they can be refused; shared with
# POST /stylize/preview.
STYLE_CHOICE_FIELDS = {
    STYLE_FIELD: {
        "type": "string",
        "maxLength": STYLE_NAME_BYTES,
        "description": "A style name from GET /models (or send style_image).",
    },
    PAINTING_FIELD: binary_field("Your own painting (JPEG, PNG, WebP) as the style."),
    STRENGTH_FIELD: STRENGTH_SCHEMA,
}
STYLE_CHOICE_ERRORS: tuple[type[Exception], ...] = (
    UnknownStyle,
    InvalidStyleChoice,
    InvalidStyleImage,
    InvalidStrength,
)

_UPLOAD_BODY = video_upload_body(STYLE_CHOICE_FIELDS)


@router.post(
    "",
    response_model=JobCreated,
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="stylize_video",
    openapi_extra=_UPLOAD_BODY,
    responses=problem_responses(
        *VIDEO_UPLOAD_ERRORS, *STYLE_CHOICE_ERRORS, FieldTooLong, QueueUnavailable
    ),
)
async def stylize_video(
    request: Request,
    response: Response,
    settings: SettingsDep,
    models: ModelsDep,
    jobs: JobsDep,
    client: ClientDep,
) -> JobCreated:
    """Queue a video to be restyled; poll the status URL, then fetch the result URL."""
    fields = {
        STYLE_FIELD: STYLE_NAME_BYTES,
        PAINTING_FIELD: settings.max_style_image_bytes,
        STRENGTH_FIELD: _STRENGTH_BYTES,
    }
    async with request_video(request, settings, fields) as video:
        style = video.fields.get(STYLE_FIELD)
        painting = video.fields.get(PAINTING_FIELD)
        strength = parse_strength(field_text(video.fields.get(STRENGTH_FIELD)))
        # Refuse what cannot play before queueing it: opening the file and decoding its first
        # frames takes milliseconds.
        info = await run_in_threadpool(check_playable, video.path, settings.decode_limits())
        record = await run_in_threadpool(
            jobs.submit,
            video,
            field_text(style),
            painting,
            models.styles,
            client,
            strength,
            stylize_time_limits(info, settings),
        )
    status_url = f"/jobs/{record.job_id}"
    response.headers["Location"] = status_url
    return JobCreated(
        job_id=record.job_id, status_url=status_url, result_url=f"{status_url}/result"
    )
