"""The Celery application factory, configured from `Settings`; tasks live in service.jobs.tasks.

Nothing is built at import: the API builds its app from its own settings (`JobQueue`), and a
worker process builds one in `service.worker`, the module Celery's command line is pointed at.

    app = create_celery_app(settings)
"""

from __future__ import annotations

import logging

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger

from service.observability.logs import reformat_handlers
from service.settings import Settings


def _log_in_our_format(settings: Settings) -> None:
    """Celery sets up the worker's handlers; give them our format (JSON lines by default)."""

    def reformat(logger: logging.Logger, **_: object) -> None:
        reformat_handlers(logger, settings.log_format)

    for signal in (after_setup_logger, after_setup_task_logger):
        signal.connect(reformat, weak=False, dispatch_uid=f"actionstyle-log-format-{id(signal)}")


def create_celery_app(settings: Settings) -> Celery:
    _log_in_our_format(settings)
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
        # Redis restarting: reconnect for ever rather than give up after 100 tries, keep the
        # running job going meanwhile, and retry result writes (the job state is what counts).
        broker_connection_max_retries=None,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        result_backend_always_retry=True,
        result_backend_max_retries=60,
        result_backend_max_sleep_between_retries_ms=2000,
        redis_socket_timeout=10,
        redis_socket_connect_timeout=5,
        redis_retry_on_timeout=True,
        # Each process gets cores / concurrency threads (Settings.worker_threads).
        worker_concurrency=settings.worker_concurrency,
        worker_max_memory_per_child=settings.worker_max_memory_mb * 1024 or None,  # KiB
        # A redelivered job must not be refused as a duplicate: its job state decides instead.
        worker_deduplicate_successful_tasks=False,
    )
    return app
