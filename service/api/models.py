"""GET /models: the installed models, their labels and measured quality; style thumbnails and
the style networks the page's Live mode runs in the browser."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field

from service.api.auth import ClientDep
from service.api.classifiers import CustomDep
from service.api.deps import ModelsDep, StyleEnginesDep
from service.contract.manifest import ClassifierEntry, ModelsMissing, StyleEntry
from service.errors import problem_responses
from service.inference.style_networks import NoStyleNetwork, style_network
from service.inference.styles import NoThumbnail

router = APIRouter(prefix="/models", tags=["models"])

StyleName = Annotated[str, Path(max_length=100, description="A style name from GET /models.")]
# A year: the longest lifetime caches honour; the URL changes with the checksum instead.
IMMUTABLE = "public, max-age=31536000, immutable"
ONNX_MEDIA_TYPE = "application/octet-stream"


class StyleNetwork(BaseModel):
    """What a browser needs to run a style itself (the page's Live mode)."""

    url: str = Field(description="The ONNX network; immutable at this URL (it names the sha256).")
    sha256: str = Field(description="Checksum of the network's bytes; also its ETag.")
    input_name: str
    output_name: str
    size_multiple: int = Field(description="Input height and width must be multiples of this.")

    @classmethod
    def of(cls, entry: StyleEntry) -> StyleNetwork:
        return cls(
            url=f"/models/styles/{entry.name}/network?sha256={entry.sha256}",
            sha256=entry.sha256,
            input_name=entry.input_name,
            output_name=entry.output_name,
            size_multiple=entry.io.size_multiple,
        )


class StyleSummary(BaseModel):
    name: str = Field(description="What POST /stylize takes as `style`.")
    display_name: str
    kind: str
    thumbnail_url: str = Field(
        description="A small picture of the style: a landscape drawn in code, painted by it."
    )
    metrics: dict[str, Any] = Field(description="What training measured, passed through.")
    network: StyleNetwork = Field(
        description="The network as ONNX (NCHW RGB in [0, 1], in and out), to run it in a browser."
    )

    @classmethod
    def of(cls, entry: StyleEntry) -> StyleSummary:
        return cls(
            name=entry.name,
            display_name=entry.display_name,
            kind=entry.kind,
            thumbnail_url=f"/models/styles/{entry.name}/thumbnail",
            metrics=entry.metrics,
            network=StyleNetwork.of(entry),
        )


class ModelsResponse(BaseModel):
    default_classifier: str
    classifiers: list[ClassifierEntry] = Field(
        description="The shipped classifiers, then your custom ones (family 'custom')."
    )
    styles: list[StyleSummary]
    custom_style: bool = Field(
        description="Whether POST /stylize takes your own painting as `style_image`."
    )


@router.get(
    "",
    response_model=ModelsResponse,
    status_code=status.HTTP_200_OK,
    operation_id="list_models",
    responses=problem_responses(ModelsMissing),
)
async def list_models(models: ModelsDep, custom: CustomDep, client: ClientDep) -> ModelsResponse:
    """List the installed models and your custom classifiers, with labels and metrics."""
    manifest = models.manifest
    taught = await run_in_threadpool(custom.entries, client)
    return ModelsResponse(
        default_classifier=manifest.default_classifier,
        classifiers=[*manifest.classifiers, *taught],
        styles=[StyleSummary.of(entry) for entry in manifest.styles],
        custom_style=manifest.arbitrary_style is not None,
    )


@router.get(
    "/styles/{name}/thumbnail",
    response_class=Response,
    status_code=status.HTTP_200_OK,
    operation_id="get_style_thumbnail",
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "The picture, 160x120."},
        **problem_responses(NoThumbnail, RequestValidationError, ModelsMissing),
    },
)
async def get_style_thumbnail(name: StyleName, engines: StyleEnginesDep) -> Response:
    """A small picture of a style, for a style picker: a landscape drawn in code, painted by it."""
    jpeg = await run_in_threadpool(engines.thumbnail, name)
    return Response(
        jpeg, media_type="image/jpeg", headers={"Cache-Control": "public, max-age=3600"}
    )


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110's weak comparison: any listed tag (W/ or not) equal to ours, or `*`."""
    if if_none_match is None:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag in tags


@router.get(
    "/styles/{name}/network",
    response_class=Response,
    status_code=status.HTTP_200_OK,
    operation_id="get_style_network",
    responses={
        200: {
            "content": {ONNX_MEDIA_TYPE: {}},
            "description": "The ONNX network; cached for a year when `sha256` names these bytes.",
        },
        304: {"description": "Not modified: If-None-Match holds the network's ETag."},
        **problem_responses(NoStyleNetwork, RequestValidationError, ModelsMissing),
    },
)
async def get_style_network(
    name: StyleName,
    models: ModelsDep,
    sha256: Annotated[
        str | None,
        Query(
            max_length=64,
            description="The checksum GET /models lists; when it matches, the answer is immutable.",
        ),
    ] = None,
    if_none_match: Annotated[str | None, Header(max_length=1000)] = None,
) -> Response:
    """A named style's ONNX network, for running the style in the browser (the Live mode)."""
    data, digest = await run_in_threadpool(style_network, models.styles, name)
    etag = f'"{digest}"'
    # Without the checksum (or with a stale one) the URL may later name other bytes: revalidate.
    cache = IMMUTABLE if sha256 == digest else "no-cache"
    headers = {"ETag": etag, "Cache-Control": cache}
    if _etag_matches(if_none_match, etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(data, media_type=ONNX_MEDIA_TYPE, headers=headers)
