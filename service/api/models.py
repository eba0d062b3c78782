"""GET /models: the installed models, their labels and measured quality."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status
from pydantic import BaseModel

from service.api.deps import ModelsDep
from service.errors import problem_responses
from service.inference.manifest import ClassifierEntry, ModelsMissing

router = APIRouter(prefix="/models", tags=["models"])


class ModelsResponse(BaseModel):
    default_classifier: str
    classifiers: list[ClassifierEntry]
    styles: list[dict[str, Any]]


@router.get(
    "",
    response_model=ModelsResponse,
    status_code=status.HTTP_200_OK,
    operation_id="list_models",
    responses=problem_responses(ModelsMissing),
)
async def list_models(models: ModelsDep) -> ModelsResponse:
    """List the installed models with their labels and metrics."""
    manifest = models.manifest
    return ModelsResponse(
        default_classifier=manifest.default_classifier,
        classifiers=manifest.classifiers,
        styles=manifest.styles,
    )
