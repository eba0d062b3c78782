"""`python -m service.devserver`: embedded Redis, a Celery worker and uvicorn, up and down."""

from __future__ import annotations

import ipaddress
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from service.devserver import Supervisor, free_port
from service.jobs.celery_app import create_celery_app
from service.settings import Settings
from tests.utils.data import CLIPS, REPO_ROOT, YOYO_CLIP
from tests.utils.processes import (
    OutputLog,
    descendant_pids,
    pid_alive,
    port_is_open,
    wait_until,
)

STARTUP_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def test_supervisor_stops_the_rest_when_a_child_dies() -> None:
    supervisor = Supervisor()
    sleeper = supervisor.start("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"])
    supervisor.start("crasher", [sys.executable, "-c", "raise SystemExit(3)"])
    try:
        wait_until(lambda: supervisor.exited() is not None, 10, "the crasher exiting")
        assert supervisor.wait() == 1
    finally:
        supervisor.stop_all(grace_s=5)
    assert sleeper.process.returncode == -signal.SIGTERM


def test_a_taken_port_is_said_plainly_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = [sys.executable, "-m", "service.devserver", "--port", str(port)]
        ran = subprocess.run(
            [*argv, "--redis-dir", str(tmp_path / "redis")],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert ran.returncode == 1
    assert f"port {port} on 127.0.0.1 is not free" in ran.stderr
    assert f"PORT={port + 1} make run" in ran.stderr
    assert "starting redis" not in ran.stderr  # nothing was started


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@linux_only
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_devserver_serves_runs_jobs_and_stops_cleanly(
    models_dir: Path, tmp_path: Path, stop_signal: signal.Signals
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "ACTIONSTYLE_REDIS_URL"}}
    env |= {"ACTIONSTYLE_MODELS_DIR": str(models_dir), "ACTIONSTYLE_ORT_INTRA_OP_THREADS": "1"}
    argv = [sys.executable, "-m", "service.devserver", "--port", str(port)]
    argv += ["--redis-dir", str(tmp_path / "redis")]
    server = subprocess.Popen(
        argv, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    log = OutputLog(server.stdout)
    try:
        wait_until(lambda: _ready(port), STARTUP_TIMEOUT_S, f"/readyz answering 200\n{log.text}")

        clip = CLIPS / "hmdb51_drink.mp4"
        with clip.open("rb") as video:
            response = httpx.post(
                f"http://127.0.0.1:{port}/classify", files={"file": (clip.name, video)}, timeout=30
            )
        assert response.status_code == 200, response.text
        assert response.json()["video"]["frames"] == 48

        # The worker takes the real task through the embedded Redis.
        redis_url = re.search(r"redis at (\S+) \(embedded\)", log.text).group(1)
        jobs = create_celery_app(Settings(redis_url=redis_url))
        job = jobs.send_task("actionstyle.classify_file", args=[str(YOYO_CLIP), None, 1])
        result = job.get(timeout=STARTUP_TIMEOUT_S)
        assert len(result["predictions"]) == 1
        assert result["video"]["frames"] == 187
        jobs.close()

        children = descendant_pids(server.pid)
        assert len(children) >= 3, log.text  # redis, the worker (and its pool), uvicorn
        server.send_signal(stop_signal)
        assert server.wait(timeout=STOP_TIMEOUT_S) == 0, log.text
        wait_until(lambda: not any(map(pid_alive, children)), 10, "every child exiting")
        redis_port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
        assert not port_is_open(port)
        assert not port_is_open(redis_port)
        assert "redis stopped" in log.text and "worker stopped" in log.text
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=STOP_TIMEOUT_S)


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as `mkcert` or `openssl req -x509` would make."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "actionstyle test")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@linux_only
def test_devserver_serves_https_with_a_certificate(models_dir: Path, tmp_path: Path) -> None:
    """What a phone on the home network needs for Live mode: the page over https."""
    cert, key = self_signed(tmp_path)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "ACTIONSTYLE_REDIS_URL"}}
    env |= {"ACTIONSTYLE_MODELS_DIR": str(models_dir), "ACTIONSTYLE_ORT_INTRA_OP_THREADS": "1"}
    argv = [sys.executable, "-m", "service.devserver", "--port", str(port)]
    argv += ["--redis-dir", str(tmp_path / "redis"), "--ssl-certfile", str(cert)]
    argv += ["--ssl-keyfile", str(key)]
    server = subprocess.Popen(
        argv, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    log = OutputLog(server.stdout)
    base = f"https://127.0.0.1:{port}"
    trust = ssl.create_default_context(cafile=str(cert))
    try:

        def ready() -> bool:
            try:
                return httpx.get(f"{base}/readyz", verify=trust, timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, STARTUP_TIMEOUT_S, f"/readyz answering over https\n{log.text}")
        assert f"the API will answer on {base}" in log.text
        page = httpx.get(base, verify=trust, timeout=10)
        assert page.status_code == 200 and "<title>actionstyle" in page.text
        with pytest.raises(httpx.HTTPError):  # plain http on the same port is not served
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=STOP_TIMEOUT_S) == 0, log.text
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=STOP_TIMEOUT_S)


def test_devserver_wants_both_halves_of_a_certificate(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "service.devserver", "--ssl-certfile", str(tmp_path / "c.pem")]
    ran = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 2
    assert "give both --ssl-certfile and --ssl-keyfile, or neither" in ran.stderr
