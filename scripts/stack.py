"""The whole service on loopback for the load and benchmark scripts: Redis, N workers, the API.

Everything runs as child processes in a temporary folder (storage, uploads, logs) that is removed
afterwards; the children are stopped on exit, whatever happens.

    with running_stack(workers=2) as stack:
        httpx.get(f"{stack.url}/readyz")
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from service.devserver import Supervisor, free_port, start_redis  # noqa: E402

READY_TIMEOUT_S = 120.0


@dataclass
class Stack:
    url: str
    root: Path
    supervisor: Supervisor
    worker_logs: list[Path]
    api_pid: int
    worker_pids: list[int]

    @property
    def storage_dir(self) -> Path:
        return self.root / "storage"

    def worker_log_text(self) -> str:
        return "\n".join(log.read_text(errors="replace") for log in self.worker_logs)


def _wait_ready(url: str, supervisor: Supervisor) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if (child := supervisor.exited()) is not None:
            raise RuntimeError(f"{child.name} exited with status {child.process.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"the API at {url} was not ready within {READY_TIMEOUT_S:.0f} s")


@contextmanager
def running_stack(
    workers: int = 1, models_dir: Path | None = None, extra_env: dict[str, str] | None = None
) -> Iterator[Stack]:
    """Redis, `workers` Celery worker processes (one job at a time each) and uvicorn."""
    supervisor = Supervisor()
    with tempfile.TemporaryDirectory(prefix="actionstyle-stack-") as folder:
        root = Path(folder)
        try:
            redis_url = start_redis(supervisor, root / "redis")
            env = {
                **os.environ,
                "PYTHONUNBUFFERED": "1",
                "ACTIONSTYLE_REDIS_URL": redis_url,
                "ACTIONSTYLE_STORAGE_DIR": str(root / "storage"),
                "ACTIONSTYLE_TEMP_DIR": str(root / "uploads"),
                "ACTIONSTYLE_LOG_FORMAT": "text",
                "MALLOC_ARENA_MAX": "2",  # as `make run` and the image run the service
                # The cores shared out between the worker processes.
                "ACTIONSTYLE_ORT_INTRA_OP_THREADS": str(
                    max(1, (os.cpu_count() or 1) // max(1, workers))
                ),
                **({"ACTIONSTYLE_MODELS_DIR": str(models_dir)} if models_dir else {}),
                **(extra_env or {}),
            }
            logs = []
            for i in range(workers):
                log = root / f"worker{i}.log"
                argv = [sys.executable, "-m", "celery", "-A", "service.worker", "worker"]
                argv += ["--loglevel", "info", "--without-gossip", "--without-mingle"]
                argv += ["--concurrency", "1", "--hostname", f"w{i}@%h"]
                # Through sh, so the worker's output goes to its log file and it keeps its pid.
                redirect = ["sh", "-c", 'exec "$@" >"$0" 2>&1', str(log)]
                supervisor.start(f"worker{i}", [*redirect, *argv], env)
                logs.append(log)
            port = free_port()
            server = [sys.executable, "-m", "uvicorn", "service.app:create_app", "--factory"]
            server += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
            server += ["--no-access-log"]
            api = supervisor.start("api", server, env)
            url = f"http://127.0.0.1:{port}"
            _wait_ready(url, supervisor)
            yield Stack(
                url,
                root,
                supervisor,
                logs,
                api.process.pid,
                [c.process.pid for c in supervisor.children if c.name.startswith("worker")],
            )
        finally:
            supervisor.stop_all()


def rss_mib(pid: int, peak: bool = False) -> float:
    """Resident memory of a process (VmRSS, or VmHWM: its peak), in MiB, from /proc."""
    key = "VmHWM:" if peak else "VmRSS:"
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) / 1024
    return 0.0


def tree_pids(pid: int) -> list[int]:
    """`pid` and every process below it (a Celery worker's pool children)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    found, frontier = [pid], {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found += sorted(frontier)
    return found
