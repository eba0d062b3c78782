"""The OpenAPI of multipart bodies read by hand, and the errors every video upload can get.

Bodies are streamed by hand (see service.video.upload), so FastAPI cannot infer their schema.

    @router.post("", openapi_extra=video_upload_body({"style": {"type": "string"}}),
                 responses=problem_responses(*VIDEO_UPLOAD_ERRORS, UnknownStyle))

Other multipart bodies: `multipart_body(required, {name: binary_field(description), ...})`.
"""

from __future__ import annotations

from typing import Any

from fastapi.exceptions import RequestValidationError

from service.contract.manifest import ModelsMissing
from service.video.decode import VideoDecodeError, VideoLimitExceeded, VideoTooShort
from service.video.upload import (
    VIDEO_SUFFIXES,
    EmptyUpload,
    MalformedUpload,
    MissingUpload,
    StorageFull,
    UnsupportedVideo,
    UploadStalled,
    UploadTooLarge,
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
