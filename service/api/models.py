"""GET /models: the installed models, their labels and measured quality; style thumbnails."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from service.api.auth import ClientDep
from service.api.classifiers import CustomDep
from service.api.deps import ModelsDep
from service.contract.manifest import ClassifierEntry, ModelsMissing, StyleEntry
from service.errors import problem_responses
from service.inference.styles import NoThumbnail

router = APIRouter(prefix="/models", tags=["models"])

StyleName = Annotated[str, Path(max_length=100, description="A style name from GET /models.")]


class StyleSummary(BaseModel):
    name: str = Field(description="What POST /stylize takes as `style`.")
    display_name: str
    kind: str
    thumbnail_url: str | None = Field(description="A small picture of the style, if any.")
    metrics: dict[str, Any] = Field(description="What training measured, passed through.")

    @classmethod
    def of(cls, entry: StyleEntry) -> StyleSummary:
        thumbnail = f"/models/styles/{entry.name}/thumbnail" if entry.thumbnail else None
        return cls(
            name=entry.name,
            display_name=entry.display_name,
            kind=entry.kind,
            thumbnail_url=thumbnail,
            metrics=entry.metrics,
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
    response_class=FileResponse,
    status_code=status.HTTP_200_OK,
    operation_id="get_style_thumbnail",
    responses={
        200: {"content": {"image/jpeg": {}, "image/png": {}}, "description": "The picture."},
        **problem_responses(NoThumbnail, RequestValidationError, ModelsMissing),
    },
)
async def get_style_thumbnail(name: StyleName, models: ModelsDep) -> FileResponse:
    """A small picture of a style, for a style picker."""
    path = await run_in_threadpool(models.styles.thumbnail_path, name)
    return FileResponse(path, headers={"Cache-Control": "public, max-age=3600"})
