"""Entry point of a Celery worker process: the one module that builds an app at import.

Celery's command line needs a module-level app; the API never imports this module. The main
process also runs the reaper that queues again the jobs of dead workers.

    celery -A service.worker worker --loglevel info --without-gossip --without-mingle
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from celery.signals import worker_process_init, worker_ready, worker_shutdown

from service.jobs.celery_app import create_celery_app
from service.jobs.reaper import Reaper
from service.jobs.tasks import warm_up, worker_store
from service.settings import Settings

logger = logging.getLogger(__name__)

settings = Settings()
app = create_celery_app(settings)
# Every worker's main process sweeps for jobs whose worker died (service.jobs.reaper).
reaper = Reaper(worker_store(settings), app.send_task, settings.job_reaper_interval_s)


@worker_ready.connect
def _start_reaper(**_: Any) -> None:
    reaper.start()


@worker_shutdown.connect
def _stop_reaper(**_: Any) -> None:
    reaper.stop()


@worker_process_init.connect
def _warm_up_in_the_background(**_: Any) -> None:
    """Each pool process loads the styles as it starts, in the background, so that its first
    job finds them ready (a job that comes sooner waits at most for one other style to load)."""
    if settings.worker_warm_up:
        threading.Thread(target=_warm_up, name="warm-up", daemon=True).start()


def _warm_up() -> None:
    started = time.perf_counter()
    try:
        names = warm_up()
    except Exception:  # the first job loads its style itself, and reports what goes wrong
        logger.warning("warm-up failed; each style loads on its first job", exc_info=True)
        return
    seconds = time.perf_counter() - started
    logger.info("warmed up in %.1f s: %s", seconds, ", ".join(names) or "no named styles")
