"""Redis goes away and comes back: the API says so, classify goes on, nothing has to restart."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from service.app import create_app
from tests.service.conftest import JobSettings, worker_env
from tests.service.jobs.test_stylize_jobs import finished, job, wait_for_job
from tests.utils.data import AUDIO_CLIP, YOYO_CLIP
from tests.utils.processes import RedisServer, running_worker, wait_until
from tests.utils.styles import TEST_STYLE

RECOVER_WITHIN_S = 60


def post_stylize(client: TestClient, clip: Path = AUDIO_CLIP) -> httpx.Response:
    with clip.open("rb") as video:
        return client.post(
            "/stylize", files={"file": (clip.name, video)}, data={"style": TEST_STYLE}
        )


def test_redis_down_then_back(own_redis: RedisServer, job_settings: JobSettings) -> None:
    settings = job_settings(own_redis.url)
    with (
        running_worker(worker_env(settings), "steady"),
        TestClient(create_app(settings)) as client,
    ):
        own_redis.stop()

        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["status"] == "not_ready"
        assert ready.json()["checks"]["models"] == "ok"
        assert ready.json()["checks"]["redis"].startswith("redis does not answer: ")

        with YOYO_CLIP.open("rb") as clip:
            classified = client.post("/classify", files={"file": (YOYO_CLIP.name, clip)})
        assert classified.status_code == 200
        assert classified.json()["video"]["frames"] == 187

        refused = post_stylize(client)
        assert refused.status_code == 503
        assert refused.json()["code"] == "queue_unavailable"
        assert refused.json()["detail"].startswith("the job queue is unavailable: ")
        assert not list(settings.storage_dir.glob("*/*"))

        own_redis.start()
        wait_until(
            lambda: client.get("/readyz").status_code == 200, RECOVER_WITHIN_S, "ready again"
        )
        accepted = post_stylize(client)
        assert accepted.status_code == 202, accepted.text
        final = wait_for_job(client, accepted.json()["job_id"], finished, RECOVER_WITHIN_S)
        assert final["state"] == "succeeded", final
        assert client.get(f"/jobs/{final['job_id']}/result").status_code == 200


def test_queued_jobs_survive_an_append_only_redis_restart(
    durable_redis: RedisServer, job_settings: JobSettings
) -> None:
    settings = job_settings(durable_redis.url)
    with TestClient(create_app(settings)) as client:
        job_ids = [post_stylize(client).json()["job_id"] for _ in range(3)]
        assert [job(client, j)["state"] for j in job_ids] == ["queued"] * 3

        durable_redis.stop()
        assert client.get("/readyz").status_code == 503
        durable_redis.start()
        assert [job(client, j)["state"] for j in job_ids] == ["queued"] * 3

        with running_worker(worker_env(settings), "late"):
            finals = [wait_for_job(client, j, finished) for j in job_ids]
        assert [f["state"] for f in finals] == ["succeeded"] * 3
        for job_id in job_ids:
            assert client.get(f"/jobs/{job_id}/result").status_code == 200
