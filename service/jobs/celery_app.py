"""The Celery application, configured from `Settings`; tasks live in service.jobs.tasks.

Celery's command line needs a module-level app, so this module builds one from the environment
when imported; building it opens no connection.

    celery -A service.jobs.celery_app worker --loglevel info   # ACTIONSTYLE_WORKER_CONCURRENCY
"""

from __future__ import annotations

import logging

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger

from service.observability.logs import reformat_handlers
from service.settings import Settings


def _use_our_log_format(logger: logging.Logger, **_: object) -> None:
    """Celery sets up the worker's handlers; give them our format (JSON lines by default)."""
    reformat_handlers(logger, Settings().log_format)


after_setup_logger.connect(_use_our_log_format, weak=False)
after_setup_task_logger.connect(_use_our_log_format, weak=False)


def create_celery_app(settings: Settings) -> Celery:
    app = Celery("actionstyle", include=["service.jobs.tasks"])
    app.conf.update(
        broker_url=settings.broker_url or settings.redis_url,
        result_backend=settings.redis_url,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        # A job is acknowledged only once done, and requeued if its worker dies mid-way.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options={
            "visibility_timeout": settings.job_visibility_timeout_s,
            # Kombu's default scans for them only every 100 s; scan every check interval.
            "unacked_restore_interval": settings.job_redelivery_check_s,
            "unacked_restore_throttle": 1,
        },
        task_time_limit=settings.job_time_limit_s,
        task_soft_time_limit=settings.job_soft_time_limit_s,
        task_track_started=True,
        result_expires=settings.job_result_expires_s,
        broker_connection_retry_on_startup=True,
        # Each process gets cores / concurrency onnxruntime threads (Settings.worker_threads).
        worker_concurrency=settings.worker_concurrency,
        # A redelivered job must not be refused as a duplicate: its job state decides instead.
        worker_deduplicate_successful_tasks=False,
    )
    return app


app = create_celery_app(Settings())
