"""The job storage fills up or cannot be written: the job ends `failed`, saying why."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from tests.service.conftest import JobSettings, worker_env
from tests.service.faults.test_redis_faults import post_stylize
from tests.service.jobs.test_stylize_jobs import finished, wait_for_job
from tests.utils.disk import fill
from tests.utils.processes import running_worker


def test_a_full_disk_fails_the_job_with_a_message(
    redis_url: str, job_settings: JobSettings, tiny_filesystem: Path
) -> None:
    settings = job_settings(redis_url.rsplit("/", 1)[0] + "/3", storage_dir=tiny_filesystem)
    with TestClient(create_app(settings)) as client:
        created = post_stylize(client)
        assert created.status_code == 202, created.text
        fill(tiny_filesystem)  # the input is stored; the result will find no room
        with running_worker(worker_env(settings), "full"):
            final = wait_for_job(client, created.json()["job_id"], finished)
    assert final["state"] == "failed"
    assert final["error"] == "the result could not be written: No space left on device"


@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """`folder` bound read-only over itself: root cannot write there either (file modes would
    not stop root). Skips the test where mounting is not allowed."""
    bound = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True)
    if bound.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {bound.stderr.decode().strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True)
        yield
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_read_only_storage_fails_the_job_with_a_message(
    redis_url: str, job_settings: JobSettings
) -> None:
    settings = job_settings(redis_url.rsplit("/", 1)[0] + "/4")
    with TestClient(create_app(settings)) as client:
        created = post_stylize(client)
        assert created.status_code == 202, created.text
        with read_only(settings.storage_dir), running_worker(worker_env(settings), "ro"):
            final = wait_for_job(client, created.json()["job_id"], finished)
    assert final["state"] == "failed"
    assert final["error"] == "the result could not be written: Read-only file system"
