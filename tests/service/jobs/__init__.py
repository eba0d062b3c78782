"""Tests of stylize jobs: state, storage, queue and the Celery tasks."""
