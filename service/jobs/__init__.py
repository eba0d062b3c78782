"""Background jobs: the Celery app and its tasks."""
