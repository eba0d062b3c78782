"""Celery tasks: thin wrappers that call the same plain functions the HTTP routes call.

app.send_task("actionstyle.classify_file", args=["/data/clip.avi", None, 3])
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from celery import Task, shared_task

from service.inference.classifier import classify, resolve_top_k
from service.inference.registry import ModelRegistry, load_registry
from service.settings import Settings


@cache
def _settings() -> Settings:
    return Settings()


@cache
def _registry() -> ModelRegistry:
    """Models load on a worker process's first job, once, then stay loaded."""
    settings = _settings()
    return load_registry(settings.models_dir, settings.ort_intra_op_threads)


def _report(task: Task, stage: str) -> None:
    """Progress through task state; skipped when the task runs in-process, without a worker."""
    if not (task.request.called_directly or task.request.is_eager):
        task.update_state(state="PROGRESS", meta={"stage": stage})


@shared_task(name="actionstyle.classify_file", bind=True)
def classify_file(
    self: Task, path: str, model: str | None = None, top_k: int | None = None
) -> dict[str, Any]:
    """Classify the video at `path` (a file the worker can read); returns a ClassifyResponse."""
    _report(self, "loading models")
    classifier = _registry().classifier(model)
    count = resolve_top_k(top_k, classifier)
    _report(self, "classifying")
    result = classify(Path(path), classifier, count, _settings().decode_limits())
    return result.model_dump()
