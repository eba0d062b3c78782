"""Typed dependencies the routes declare: the settings and the loaded models."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.inference.manifest import ModelsMissing
from service.inference.registry import ModelRegistry
from service.jobs.queue import JobQueue
from service.settings import Settings


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_models(request: Request) -> ModelRegistry:
    """The registry the lifespan loaded; 503 while no model is installed."""
    models: ModelRegistry | None = request.app.state.models
    if models is None:
        raise ModelsMissing(request.app.state.models_missing)
    return models


def get_jobs(request: Request) -> JobQueue:
    """The job queue the lifespan built (Redis client, storage, Celery producer)."""
    return request.app.state.jobs


SettingsDep = Annotated[Settings, Depends(get_settings)]
ModelsDep = Annotated[ModelRegistry, Depends(get_models)]
JobsDep = Annotated[JobQueue, Depends(get_jobs)]
