"""Fixtures for the object-storage job tests: moto's S3 server, a worker and the API using it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.service.conftest import JobStack, worker_env
from tests.utils.processes import running_worker
from tests.utils.s3 import S3_ENV, running_s3, s3_client

BUCKET, PREFIX = "actionstyle-jobs", "test/jobs"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with pytest.MonkeyPatch.context() as patch, running_s3() as endpoint:
        for name, value in S3_ENV.items():
            patch.setenv(name, value)  # the in-process API's boto3 signs with these
        s3_client(endpoint).create_bucket(Bucket=BUCKET)
        yield endpoint


@pytest.fixture(scope="session")
def s3_job_stack(
    style_models_dir: Path,
    redis_url: str,
    s3_endpoint: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[JobStack]:
    """The API in-process and a real worker process sharing only Redis and the bucket."""
    root = tmp_path_factory.mktemp("s3jobs")
    # Its own database, so its worker and job_stack's (alive in the same session) never take
    # each other's jobs: they share no storage.
    redis_url = redis_url.rsplit("/", 1)[0] + "/5"
    settings = Settings(
        models_dir=style_models_dir,
        storage_dir=root / "never-used",
        storage_url=f"s3://{BUCKET}/{PREFIX}",
        s3_endpoint_url=s3_endpoint,
        temp_dir=root / "uploads",
        redis_url=redis_url,
        ort_intra_op_threads=1,
    )
    env = worker_env(settings) | S3_ENV | {"ACTIONSTYLE_STORAGE_DIR": str(root / "worker-dir")}
    with running_worker(env, "s3") as (_, log), TestClient(create_app(settings)) as client:
        yield JobStack(settings, client, log)
