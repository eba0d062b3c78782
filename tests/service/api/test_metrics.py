"""GET /metrics: what this process measured, and the cluster as Redis sees it.

Request counts and latencies by route template, classify time, and Redis's view of the cluster
(jobs by state, queue length, frames stylised).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from service.app import create_app
from service.jobs.state import JobStore
from service.observability.metrics import record_stylized
from service.settings import Settings
from tests.service.conftest import SettingsFactory
from tests.utils.data import AUDIO_CLIP
from tests.utils.jobs import submit_job
from tests.utils.metrics import sample, samples
from tests.utils.styles import TEST_STYLE


@pytest.fixture
def metrics_redis(redis_url: str) -> str:
    # Database 4, emptied: the job and queue numbers below are this test's alone.
    url = redis_url.rsplit("/", 1)[0] + "/4"
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture
def metered(
    make_settings: SettingsFactory, style_models_dir: Path, metrics_redis: str, tmp_path: Path
) -> Iterator[TestClient]:
    settings = make_settings(
        models_dir=style_models_dir, redis_url=metrics_redis, storage_dir=tmp_path / "storage"
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_requests_are_counted_by_route_template(metered: TestClient) -> None:
    before = metered.get("/metrics").text
    job_route = {"method": "GET", "route": "/jobs/{job_id}"}
    for _ in range(2):
        assert metered.get(f"/jobs/{uuid.uuid4().hex}").status_code == 404
    assert metered.get("/no/such/page").status_code == 404

    response = metered.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    text = response.text
    counted = "actionstyle_http_requests_total"
    start = sum(
        v for labels, v in samples(before, counted) if labels == {**job_route, "status": "404"}
    )
    assert sample(text, counted, **job_route, status="404") == start + 2
    assert sample(text, counted, method="GET", route="unmatched", status="404") >= 1
    # One label value per route template, never per job id.
    assert not re.search(r'route="/jobs/[0-9a-f]{32}"', text)
    bucket = "actionstyle_http_request_duration_seconds_bucket"
    assert sample(text, bucket, **job_route, le="+Inf") >= 2
    assert sample(text, "actionstyle_http_request_duration_seconds_count", **job_route) >= 2


def test_classify_time_is_observed_by_model_and_stage(metered: TestClient) -> None:
    with AUDIO_CLIP.open("rb") as video:
        response = metered.post("/classify", files={"file": (AUDIO_CLIP.name, video)})
    assert response.status_code == 200, response.text
    model = response.json()["model"]
    text = metered.get("/metrics").text
    for stage in ("decode", "inference"):
        assert sample(text, "actionstyle_classify_seconds_count", model=model, stage=stage) >= 1
    assert sample(text, "actionstyle_classify_seconds_sum", model=model, stage="inference") > 0


def test_jobs_queue_and_frames_come_from_redis(metered: TestClient, metrics_redis: str) -> None:
    client = redis.Redis.from_url(metrics_redis)
    # No worker listens on this database: the jobs stay queued, their messages in the list.
    for _ in range(3):
        submit_job(metered, AUDIO_CLIP, TEST_STYLE)
    store = JobStore(client, ttl_s=60)
    running = uuid.uuid4().hex
    store.create(running, TEST_STYLE)
    store.start(running, "attempt", "worker@host")
    store.announce_worker("worker@host", ttl_s=60)
    record_stylized(client, frames=164, seconds=4.0)
    record_stylized(client, frames=36, seconds=1.0)

    text = metered.get("/metrics").text
    assert sample(text, "actionstyle_redis_up") == 1
    assert sample(text, "actionstyle_jobs", state="queued") == 3
    assert sample(text, "actionstyle_jobs", state="running") == 1
    assert sample(text, "actionstyle_jobs", state="succeeded") == 0
    assert sample(text, "actionstyle_queue_length") == 3
    assert sample(text, "actionstyle_queue_unacked") == 0
    assert sample(text, "actionstyle_workers") == 1
    assert sample(text, "actionstyle_stylize_frames_total") == 200
    assert sample(text, "actionstyle_stylize_worker_seconds_total") == 5.0
    assert sample(text, "actionstyle_stylize_jobs_succeeded_total") == 2


def test_metrics_answer_while_redis_is_down(make_settings: SettingsFactory) -> None:
    with TestClient(create_app(make_settings())) as client:  # redis_url: a closed port
        response = client.get("/metrics")
    assert response.status_code == 200
    assert sample(response.text, "actionstyle_redis_up") == 0
    assert "actionstyle_http_requests_total" in response.text
    assert "actionstyle_queue_length" not in response.text


def test_metrics_need_no_api_key(make_settings: SettingsFactory) -> None:
    settings: Settings = make_settings(api_keys="secret")
    with TestClient(create_app(settings)) as client:
        assert client.get("/metrics").status_code == 200
