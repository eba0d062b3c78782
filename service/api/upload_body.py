"""The OpenAPI description of a video upload body, shared by the routes that take one.

The body is streamed by hand (see service.video.upload), so FastAPI cannot infer its schema.

    @router.post("", openapi_extra=video_upload_body({"style": {"type": "string"}}))
"""

from __future__ import annotations

from typing import Any

from service.video.upload import VIDEO_SUFFIXES


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
