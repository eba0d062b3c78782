"""What every route that takes a video upload shares: its body's OpenAPI and its errors.

The body is streamed by hand (see service.video.upload), so FastAPI cannot infer its schema.

    @router.post("", openapi_extra=video_upload_body({"style": {"type": "string"}}),
                 responses=problem_responses(*VIDEO_UPLOAD_ERRORS, UnknownStyle))
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
    UnsupportedVideo,
    UploadTooLarge,
)

# The failures of receiving, checking and decoding an uploaded video, on whichever route.
VIDEO_UPLOAD_ERRORS: tuple[type[Exception], ...] = (
    UploadTooLarge,
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


def video_upload_body(extra_fields: dict[str, Any] | None = None) -> dict[str, Any]:
    """A required multipart body with the `file` video and any `extra_fields` beside it."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {
                            "file": {
                                "type": "string",
                                "format": "binary",
                                "contentMediaType": "application/octet-stream",
                                "description": "The video; its name must end in "
                                + ", ".join(VIDEO_SUFFIXES),
                            },
                            **(extra_fields or {}),
                        },
                    }
                }
            },
        }
    }
