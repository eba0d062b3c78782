"""The FastAPI application: settings, model loading at start-up, routers and error handlers.

uvicorn service.app:create_app --factory
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from service.api import (
    classifiers,
    classify,
    health,
    jobs,
    metrics,
    models,
    preview,
    stylize,
    web,
)
from service.api.auth import (
    API_KEY_HEADER,
    ApiKeyRequired,
    TooManyJobs,
    limit_new_jobs,
    require_api_key,
)
from service.contract.manifest import ManifestError, ModelsMissing
from service.errors import install_error_handlers, problem_responses
from service.inference.registry import load_registry
from service.jobs.ends import JobEnds
from service.jobs.queue import JobQueue, QueueFull
from service.observability.logs import configure_logging
from service.observability.middleware import ObservabilityMiddleware
from service.settings import Settings

API_VERSION = "0.1.0"
logger = logging.getLogger(__name__)


def _check_writable(folder: Path, variable: str) -> None:
    """Refuse to start when a folder that uploads or jobs are written to cannot be written:
    otherwise every upload would fail with a server error while /readyz said ready."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
            pass
    except OSError as exc:
        message = (
            f"refusing to start: {variable}={folder} cannot be written ({exc.strerror}); "
            "point it at a folder this process may write to"
        )
        logger.error("%s", message)
        raise RuntimeError(message) from exc


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    _check_writable(settings.temp_dir or Path(tempfile.gettempdir()), "ACTIONSTYLE_TEMP_DIR")
    if not settings.storage_url:  # else the job files live in a bucket
        _check_writable(settings.storage_dir, "ACTIONSTYLE_STORAGE_DIR")
    try:
        app.state.models = load_registry(
            settings.models_dir,
            settings.ort_intra_op_threads,
            settings.open_set_thresholds,
            settings.open_set_min_top1,
            settings.ort_memory_arena,
            settings.openvino_classifier_names(),
            settings.inference_slots(),
        )
    except ModelsMissing as exc:  # not yet exported: serve, but report not ready
        logger.warning("%s", exc)
        app.state.models, app.state.models_missing = None, str(exc)
    except ManifestError as exc:  # a bad manifest or checksum: refuse to start, saying why
        logger.error("refusing to start: %s", exc)
        raise
    app.state.jobs = JobQueue.from_settings(settings)
    app.state.job_ends = JobEnds(settings.redis_url)
    app.state.inference_slots = threading.BoundedSemaphore(settings.inference_slots())
    listening = asyncio.create_task(app.state.job_ends.listen())
    try:
        yield
    finally:
        listening.cancel()
        await asyncio.wait([listening], timeout=2)  # never holds up a shutdown


# What a page on another origin may read of an answer, beyond the always-safe headers.
CORS_EXPOSED_HEADERS = [
    "Location",
    "Retry-After",
    "X-Request-ID",
    "Content-Disposition",
    "Content-Range",
    "Accept-Ranges",
]


def create_app(settings: Settings | None = None) -> FastAPI:
    app = FastAPI(
        title="actionstyle",
        version=API_VERSION,
        description="Recognise human actions in video clips and restyle them like a painter.",
        lifespan=_lifespan,
    )
    app.state.settings = settings = settings or Settings()
    configure_logging(settings.log_format, settings.log_level)
    app.state.models, app.state.models_missing = None, "the models are still loading"
    install_error_handlers(app)
    app.add_middleware(ObservabilityMiddleware)
    if settings.cors_origin_list():
        # Added last, so outermost: it answers preflights before the API key is asked for.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list(),
            allow_methods=["GET", "HEAD", "POST", "DELETE"],
            allow_headers=[API_KEY_HEADER, "Content-Type", "Range", "X-Request-ID"],
            expose_headers=CORS_EXPOSED_HEADERS,
            max_age=600,
        )
    # The API needs a key when keys are configured; the page, health and metrics never do.
    key = [Depends(require_api_key)]
    app.include_router(
        classify.router, dependencies=key, responses=problem_responses(ApiKeyRequired)
    )
    app.include_router(
        stylize.router,
        dependencies=[*key, Depends(limit_new_jobs)],
        responses=problem_responses(ApiKeyRequired, TooManyJobs, QueueFull),
    )
    # Previews are not jobs: a key, but not the job quota (a slider would use it up).
    for router in (jobs.router, models.router, preview.router):
        app.include_router(router, dependencies=key, responses=problem_responses(ApiKeyRequired))
    app.include_router(
        classifiers.router, dependencies=key, responses=problem_responses(ApiKeyRequired)
    )
    for router in (health.router, metrics.router, web.router):
        app.include_router(router)
    app.mount("/static", web.static_files(), name="static")
    return app
