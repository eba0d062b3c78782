"""Every kind of failure mapped, in this one place, to an HTTP status and a JSON `Problem` body.

The exception types live beside the code that raises them (video, inference); this module only
says what each means over HTTP, so no route builds an error response itself.

    install_error_handlers(app)
    @router.post(..., responses=problem_responses(UploadTooLarge, UnknownModel))
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Match

from service.api.auth import ApiKeyRequired, TooManyJobs
from service.api.ranges import RangeNotSatisfiable
from service.contract.manifest import ModelsMissing
from service.custom.archive import ArchiveTooLarge, InvalidTrainingSet, UnsafeArchive
from service.custom.features import EncoderMissing
from service.custom.models import InvalidClassifierName, UnknownClassifier
from service.custom.submit import ClassifierExists
from service.inference.classifier import InvalidTopK, TooManySegments
from service.inference.preview import InvalidPreviewImage, PreviewBusy
from service.inference.registry import UnknownModel
from service.inference.strength import InvalidStrength
from service.inference.style_networks import NoStyleNetwork
from service.inference.styles import NoThumbnail, UnknownStyle
from service.jobs.queue import (
    InvalidStyleChoice,
    InvalidStyleImage,
    JobAlreadyFinished,
    JobHasNoResult,
    JobNotFinished,
    JobNotFound,
    QueueFull,
    QueueUnavailable,
    ResultIsClassifier,
)
from service.video.decode import VideoDecodeError, VideoLimitExceeded, VideoTooShort
from service.video.upload import (
    EmptyUpload,
    FieldTooLong,
    MalformedUpload,
    MissingUpload,
    StorageFull,
    UnsupportedVideo,
    UploadStalled,
    UploadTooLarge,
)

logger = logging.getLogger(__name__)


class Problem(BaseModel):
    """The body of every error response."""

    detail: str = Field(description="What went wrong, for a person to read and act on.")
    code: str = Field(description="Stable machine-readable kind of error.")


# exception type -> (status, code, what it means in the API docs)
ERRORS: dict[type[Exception], tuple[int, str, str]] = {
    UploadTooLarge: (413, "upload_too_large", "The upload is larger than the configured limit."),
    UploadStalled: (408, "upload_stalled", "The client stopped sending the upload."),
    UnsupportedVideo: (415, "unsupported_media_type", "The file is not a video format we accept."),
    MissingUpload: (422, "missing_file", "The request has no multipart field `file`."),
    MalformedUpload: (422, "malformed_upload", "The multipart body is broken or incomplete."),
    EmptyUpload: (422, "empty_file", "The uploaded file is empty."),
    FieldTooLong: (422, "invalid_parameter", "A form field is longer than its limit."),
    VideoLimitExceeded: (422, "video_limit_exceeded", "The video is beyond a decode limit."),
    VideoTooShort: (422, "video_too_short", "The video has too few decodable frames."),
    VideoDecodeError: (422, "undecodable_video", "The video cannot be decoded."),
    InvalidTopK: (422, "invalid_parameter", "A parameter is out of range."),
    TooManySegments: (422, "too_many_segments", "`window_s` is too short for this video."),
    RequestValidationError: (422, "invalid_parameter", "A parameter is missing or invalid."),
    UnknownModel: (404, "unknown_model", "The requested model does not exist."),
    ModelsMissing: (503, "models_unavailable", "No model is installed yet."),
    NoThumbnail: (404, "thumbnail_not_found", "There is no such style to draw."),
    NoStyleNetwork: (404, "style_not_found", "No named style of this name is installed."),
    UnknownStyle: (422, "unknown_style", "The style is not installed."),
    InvalidStyleChoice: (422, "invalid_style_choice", "Send one of `style`, `style_image`."),
    InvalidStyleImage: (422, "invalid_style_image", "The style painting is not a readable image."),
    InvalidStrength: (422, "invalid_strength", "`strength` is not a number above 0 and up to 1."),
    InvalidPreviewImage: (422, "invalid_preview_image", "The picture is unreadable or too big."),
    PreviewBusy: (503, "preview_busy", "No inference slot came free in time; retry shortly."),
    ArchiveTooLarge: (413, "archive_too_large", "The archive unpacks to more than the limit."),
    UnsafeArchive: (422, "unsafe_archive", "An archive entry is unsafe (a link, '..') or broken."),
    InvalidTrainingSet: (422, "invalid_training_set", "Too few clips or labels, or mismatched."),
    InvalidClassifierName: (422, "invalid_classifier_name", "The name is empty, too long or bad."),
    ClassifierExists: (409, "classifier_exists", "A model of this name exists or is being taught."),
    UnknownClassifier: (404, "classifier_not_found", "You have no custom classifier of this name."),
    EncoderMissing: (503, "encoder_unavailable", "No feature encoder is installed to teach with."),
    JobNotFound: (404, "job_not_found", "No job has this id, or it has expired."),
    JobNotFinished: (409, "job_not_finished", "The job is still queued or running."),
    JobHasNoResult: (409, "job_has_no_result", "The job failed or was cancelled."),
    ResultIsClassifier: (
        409,
        "result_is_classifier",
        "A teach job: its result is the classifier at /classifiers/{name}, not a video.",
    ),
    JobAlreadyFinished: (409, "job_already_finished", "The job has already finished."),
    QueueUnavailable: (503, "queue_unavailable", "The job queue (Redis) does not answer."),
    QueueFull: (503, "queue_full", "As many jobs as the service queues are waiting already."),
    StorageFull: (503, "storage_full", "The server's disk has no room for the upload now."),
    ApiKeyRequired: (401, "api_key_required", "No valid API key in the X-API-Key header."),
    TooManyJobs: (429, "too_many_jobs", "The key's stylize jobs per minute are used up."),
    RangeNotSatisfiable: (416, "range_not_satisfiable", "The byte range is outside the file."),
}


def _problem(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse(Problem(detail=detail, code=code).model_dump(), status_code=status)


async def _handle_known(request: Request, exc: Exception) -> JSONResponse:
    for kind in type(exc).__mro__:
        if kind in ERRORS:
            status, code, _ = ERRORS[kind]
            response = _problem(status, code, str(exc))
            response.headers.update(getattr(exc, "headers", None) or {})  # Retry-After etc.
            return response
    raise exc  # unreachable: handlers are registered only for the types above


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        where, *names = [str(part) for part in error.get("loc", ())] or ["request"]
        name = ".".join(names)
        place = f"{where} parameter '{name}'" if name else where
        parts.append(f"{place}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "the request is invalid"


# Starlette types every handler as taking any Exception; each narrows to the type it is for.
async def _handle_validation(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, RequestValidationError):
        raise exc  # unreachable: registered for RequestValidationError only
    status, code, _ = ERRORS[RequestValidationError]
    return _problem(status, code, _describe_validation(exc))


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _allowed_methods(request: Request) -> str:
    """Every method some route of this path takes (Starlette names only the first route's)."""
    routes = request.app.router.routes
    return ", ".join(
        method
        for method in _METHODS
        if any(r.matches({**request.scope, "method": method})[0] is Match.FULL for r in routes)
    )


async def _handle_http(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, StarletteHTTPException):
        raise exc  # unreachable: registered for Starlette's HTTPException only
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    response = _problem(exc.status_code, code, str(exc.detail))
    response.headers.update(exc.headers or {})
    if exc.status_code == 405 and (allowed := _allowed_methods(request)):
        response.headers["Allow"] = allowed
    return response


# nginx's code for a request whose client went away before the answer; no one receives it, but
# the access line and the request metrics say what happened instead of counting a server error.
CLIENT_CLOSED_REQUEST = 499


async def _handle_client_gone(request: Request, exc: Exception) -> Response:
    # Phones lose their connection mid-upload all the time: routine, not an error to page about.
    logger.info("client went away during %s %s", request.method, request.url.path)
    return Response(status_code=CLIENT_CLOSED_REQUEST)


async def _handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return _problem(500, "internal_error", "internal server error; the cause is in the server log")


def install_error_handlers(app: FastAPI) -> None:
    for kind in ERRORS:
        if kind is not RequestValidationError:
            app.add_exception_handler(kind, _handle_known)
    app.add_exception_handler(RequestValidationError, _handle_validation)
    app.add_exception_handler(StarletteHTTPException, _handle_http)
    app.add_exception_handler(ClientDisconnect, _handle_client_gone)
    app.add_exception_handler(Exception, _handle_unexpected)


def problem_responses(*kinds: type[Exception]) -> dict[int | str, dict[str, Any]]:
    """The `responses=` documentation of a route that can raise `kinds`."""
    described: dict[int, list[str]] = {}
    for kind in kinds:
        status, code, meaning = ERRORS[kind]
        described.setdefault(status, []).append(f"`{code}`: {meaning}")
    return {
        status: {"model": Problem, "description": " ".join(lines)}
        for status, lines in sorted(described.items())
    }
