"""A route's video upload: received within the settings' limits, its OpenAPI, its errors.

Bodies are streamed by hand (see service.video.upload), so FastAPI cannot infer their schema.

    @router.post("", openapi_extra=video_upload_body({"style": {"type": "string"}}),
                 responses=problem_responses(*VIDEO_UPLOAD_ERRORS, UnknownStyle))
    async def route(request: Request, settings: SettingsDep) -> ...:
        async with request_video(request, settings) as video:   # video.path, video.fields

Other multipart bodies: `multipart_body(required, {name: binary_field(description), ...})`.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError

from service.contract.manifest import ModelsMissing
from service.settings import Settings
from service.video.decode import VideoDecodeError, VideoLimitExceeded, VideoTooShort
from service.video.upload import (
    VIDEO_SUFFIXES,
    EmptyUpload,
    MalformedUpload,
    MissingUpload,
    ReceivedVideo,
    StorageFull,
    UnsupportedVideo,
    UploadLimits,
    UploadStalled,
    UploadTooLarge,
    idle_limited,
    receive_video_upload,
)

# The failures of receiving, checking and decoding an uploaded video, on whichever route.
VIDEO_UPLOAD_ERRORS: tuple[type[Exception], ...] = (
    UploadTooLarge,
    UploadStalled,
    StorageFull,
    UnsupportedVideo,
    RequestValidationError,
    MissingUpload,
    MalformedUpload,
    EmptyUpload,
    VideoDecodeError,
    VideoLimitExceeded,
    VideoTooShort,
    ModelsMissing,
)


def binary_field(description: str) -> dict[str, Any]:
    """The OpenAPI schema of one file in a multipart body."""
    return {
        "type": "string",
        "format": "binary",
        "contentMediaType": "application/octet-stream",
        "description": description,
    }


def multipart_body(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    """The `openapi_extra` of a route whose multipart body has `properties`, `required` among
    them (its body is read by hand, so FastAPI cannot infer it)."""
    schema = {"type": "object", "required": required, "properties": properties}
    return {
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": schema}},
        }
    }


def video_upload_body(extra_fields: dict[str, Any] | None = None) -> dict[str, Any]:
    """A required multipart body with the `file` video and any `extra_fields` beside it."""
    video = binary_field(
        "The video: AVI, MP4, MOV, 3GP, MPEG, MTS, WMV, WebM or MKV by its content; a file "
        "name with an extension must end in " + ", ".join(VIDEO_SUFFIXES)
    )
    return multipart_body(["file"], {"file": video, **(extra_fields or {})})


def request_video(
    request: Request, settings: Settings, extra_fields: dict[str, int] | None = None
) -> AbstractAsyncContextManager[ReceivedVideo]:
    """The request's multipart `file` streamed to a temporary file (removed on exit) within the
    settings' size and idle limits, with the small `extra_fields` (name -> byte cap) beside it."""
    limits = UploadLimits(
        max_bytes=settings.max_upload_bytes,
        temp_dir=settings.temp_dir,
        extra_fields=extra_fields or {},
    )
    return receive_video_upload(
        request.headers.get("content-type"),
        request.headers.get("content-length"),
        idle_limited(request.stream(), settings.upload_idle_timeout_s),
        limits,
    )
