"""Entry point of a Celery worker process: the one module that builds an app at import.

Celery's command line needs a module-level app; the API never imports this module.

    celery -A service.worker worker --loglevel info --without-gossip --without-mingle
"""

from __future__ import annotations

from service.jobs.celery_app import create_celery_app
from service.settings import Settings

app = create_celery_app(Settings())
