"""The job queue as a caller sees it: a queued job's place in the line, and the line's limit."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from fastapi.testclient import TestClient

from service.app import create_app
from tests.service.conftest import JobSettings
from tests.utils.data import AUDIO_CLIP
from tests.utils.jobs import submit_job
from tests.utils.styles import TEST_STYLE
from tests.utils.teach import TRAINING_SET, training_form

MAX_QUEUED = 2


@pytest.fixture
def queue_client(job_settings: JobSettings, redis_url: str) -> Iterator[TestClient]:
    """The API on a Redis database no worker reads, so its jobs stay queued."""
    url = redis_url.rsplit("/", 1)[0] + "/11"
    redis.Redis.from_url(url).flushdb()
    settings = job_settings(url, max_queued_jobs=MAX_QUEUED)
    with TestClient(create_app(settings)) as client:
        yield client
    redis.Redis.from_url(url).flushdb()


def test_a_queued_job_says_how_many_wait_ahead_of_it(queue_client: TestClient) -> None:
    first = submit_job(queue_client, AUDIO_CLIP, TEST_STYLE)
    second = submit_job(queue_client, AUDIO_CLIP, TEST_STYLE)

    statuses = [queue_client.get(job["status_url"]).json() for job in (first, second)]
    assert [(s["state"], s["queue_position"]) for s in statuses] == [("queued", 0), ("queued", 1)]
    assert [s["workers_online"] for s in statuses] == [0, 0]  # no worker reads this database

    queue_client.delete(first["status_url"])
    assert queue_client.get(first["status_url"]).json()["queue_position"] is None  # cancelled
    assert queue_client.get(second["status_url"]).json()["queue_position"] == 0


def test_a_full_queue_refuses_new_jobs_until_there_is_room(queue_client: TestClient) -> None:
    jobs = [submit_job(queue_client, AUDIO_CLIP, TEST_STYLE) for _ in range(MAX_QUEUED)]

    with AUDIO_CLIP.open("rb") as video:
        stylize = queue_client.post(
            "/stylize", files={"file": (AUDIO_CLIP.name, video)}, data={"style": TEST_STYLE}
        )
    files, data = training_form(TRAINING_SET, "while-full")
    teach = queue_client.post("/classifiers", files=files, data=data)
    for refused in (stylize, teach):
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "60"
        assert refused.json() == {
            "code": "queue_full",
            "detail": f"{MAX_QUEUED} jobs are already waiting for a worker, the most this "
            "service queues; try again in a minute or two",
        }

    queue_client.delete(jobs[0]["status_url"])  # one leaves the line: room for one more
    submit_job(queue_client, AUDIO_CLIP, TEST_STYLE)
