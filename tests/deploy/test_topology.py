"""The compose topology run as processes: jobs spread over two workers, /metrics sums two APIs.

One password-protected redis-server, the api (uvicorn with the compose command: two processes),
two Celery workers, each given the environment the compose file gives its container. Jobs spread
over both workers through one queue and one storage folder, results come back through the api,
and /metrics sums both api processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from service.devserver import free_port
from service.settings import Settings
from tests.utils.compose import compose_command, compose_environment, env_example
from tests.utils.data import AUDIO_CLIP, REPO_ROOT
from tests.utils.jobs import job_worker, json_lines, submit_job, wait_for_status
from tests.utils.metrics import sample
from tests.utils.processes import (
    OutputLog,
    running_redis,
    running_worker,
    stop_group,
    wait_until,
)
from tests.utils.styles import TEST_STYLE, build_models_dir

PASSWORD = "topology-secret"
JOBS = 4
STARTUP_S = 90


@dataclass
class Topology:
    api_url: str
    redis_url: str
    storage_dir: Path
    worker_logs: dict[str, OutputLog]


def _container_env(redis_url: str, root: Path, models_dir: Path) -> dict[str, str]:
    """compose's api/worker environment, with the container-only names mapped to this host."""
    variables = env_example() | {"REDIS_PASSWORD": PASSWORD, "ACTIONSTYLE_PORT": "8000"}
    env = compose_environment("api", variables)
    assert compose_environment("worker", variables).items() <= env.items()
    port = redis_url.rsplit(":", 1)[1].split("/")[0]
    # compose's DNS name `redis` and its mount points become loopback and temporary folders.
    env["REDIS_URL"] = env["REDIS_URL"].replace("@redis:6379", f"@127.0.0.1:{port}")
    env["ACTIONSTYLE_STORAGE_DIR"] = str(root / "storage")  # the job-storage volume
    env["PROMETHEUS_MULTIPROC_DIR"] = str(root / "prometheus")  # the api's tmpfs
    (root / "prometheus").mkdir()
    # What the Dockerfile's ENV sets, and two CPUs shared by everything here.
    env |= {"ACTIONSTYLE_MODELS_DIR": str(models_dir), "ACTIONSTYLE_ORT_INTRA_OP_THREADS": "1"}
    env |= {"ACTIONSTYLE_TEMP_DIR": str(root / "uploads")}
    return env


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    root = tmp_path_factory.mktemp("topology")
    exported = Settings().models_dir
    if not (exported / "manifest.json").exists():
        pytest.skip(f"no exported models at {exported}")
    models_dir = build_models_dir(root / "models", exported)
    (root / "redis").mkdir()
    with running_redis(root / "redis") as open_url:
        redis.Redis.from_url(open_url).config_set("requirepass", PASSWORD)  # as compose does
        redis_url = open_url.replace("redis://", f"redis://:{PASSWORD}@")
        env = _container_env(redis_url, root, models_dir)
        # Nothing of this process's own settings may leak into the children.
        base = {k: v for k, v in os.environ.items() if not k.startswith("ACTIONSTYLE_")}
        base.pop("REDIS_URL", None)
        api_port = free_port()
        command = compose_command("api", env_example())
        assert command[:3] == ["uvicorn", "service.app:create_app", "--factory"]
        argv = [sys.executable, "-m", *command]
        argv[argv.index("--port") + 1] = str(api_port)
        argv[argv.index("--host") + 1] = "127.0.0.1"
        api = subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            env=base | env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            process_group=0,
        )
        api_log, api_url = OutputLog(api.stdout), f"http://127.0.0.1:{api_port}"
        try:
            with running_worker(env, "w1") as (_, log1), running_worker(env, "w2") as (_, log2):

                def ready() -> bool:
                    try:
                        return httpx.get(f"{api_url}/readyz", timeout=2).status_code == 200
                    except httpx.HTTPError:
                        return api.poll() is not None

                wait_until(ready, STARTUP_S, "the api answering /readyz")
                assert api.poll() is None, api_log.text
                yield Topology(api_url, redis_url, root / "storage", {"w1": log1, "w2": log2})
        finally:
            stop_group(api)


def test_two_workers_share_the_queue_and_the_storage(topology: Topology) -> None:
    with httpx.Client(base_url=topology.api_url, timeout=60) as client:
        request_ids = {}
        for _ in range(JOBS):
            request_id = f"topology-{uuid.uuid4().hex[:8]}"
            created = submit_job(
                client, AUDIO_CLIP, TEST_STYLE, headers={"X-Request-ID": request_id}
            )
            request_ids[created["job_id"]] = request_id
        for job_id in request_ids:
            final = wait_for_status(client, job_id)
            assert final["state"] == "succeeded", final

        # Both workers took jobs off the one queue.
        ran_on = {job_id: job_worker(topology.redis_url, job_id) for job_id in request_ids}
        assert {name.split("@")[0] for name in ran_on.values()} == {"w1", "w2"}, ran_on

        # Each result is in the shared folder and comes back through the api, seekable.
        for job_id in request_ids:
            assert (topology.storage_dir / job_id / "result.mp4").is_file()
            whole = client.get(f"/jobs/{job_id}/result")
            assert whole.status_code == 200 and whole.headers["content-type"] == "video/mp4"
            assert 0 < whole.content.find(b"moov") < whole.content.find(b"mdat")
            part = client.get(f"/jobs/{job_id}/result", headers={"Range": "bytes=0-99"})
            assert part.status_code == 206 and part.content == whole.content[:100]

        # A job's lines in its worker's log carry the request id of the POST that made it.
        for job_id, worker in ran_on.items():
            lines = json_lines(topology.worker_logs[worker.split("@")[0]].lines)
            mine = [e for e in lines if e.get("request_id") == request_ids[job_id]]
            assert any(e["message"] == f"job {job_id} started on {worker}" for e in mine), mine

        # /metrics: what both api processes counted, and the cluster's view from Redis.
        text = client.get("/metrics").text
        posted = {"method": "POST", "route": "/stylize", "status": "202"}
        assert sample(text, "actionstyle_http_requests_total", **posted) == JOBS
        assert sample(text, "actionstyle_jobs", state="succeeded") == JOBS
        assert sample(text, "actionstyle_queue_length") == 0
        assert sample(text, "actionstyle_stylize_jobs_succeeded_total") == JOBS
        assert sample(text, "actionstyle_stylize_frames_total") == JOBS * 164
        assert sample(text, "actionstyle_stylize_worker_seconds_total") > 0
