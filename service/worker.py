"""Entry point of a Celery worker process: the one module that builds an app at import.

Celery's command line needs a module-level app; the API never imports this module. The main
process also runs the reaper that queues again the jobs of dead workers.

    celery -A service.worker worker --loglevel info --without-gossip --without-mingle
"""

from __future__ import annotations

from typing import Any

from celery.signals import worker_ready, worker_shutdown

from service.jobs.celery_app import create_celery_app
from service.jobs.reaper import Reaper
from service.jobs.tasks import worker_store
from service.settings import Settings

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
