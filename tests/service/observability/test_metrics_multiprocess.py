"""With PROMETHEUS_MULTIPROC_DIR, /metrics sums what every API process counted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.utils.data import REPO_ROOT
from tests.utils.metrics import sample
from tests.utils.processes import closed_port

COUNT = """
from service.observability.metrics import LATENCY, REQUESTS
for _ in range({n}):
    REQUESTS.labels("GET", "/healthz", "200").inc()
    LATENCY.labels("GET", "/healthz").observe(0.01)
"""
RENDER = """
import redis
from service.observability.metrics import render_metrics
body, _ = render_metrics(redis.Redis.from_url("redis://127.0.0.1:{port}/0"))
print(body.decode())
"""


def run(script: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_counts_of_several_processes_add_up(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    run(COUNT.format(n=2), env)
    run(COUNT.format(n=3), env)
    text = run(RENDER.format(port=closed_port()), env)
    healthz = {"method": "GET", "route": "/healthz"}
    assert sample(text, "actionstyle_http_requests_total", **healthz, status="200") == 5
    assert sample(text, "actionstyle_http_request_duration_seconds_count", **healthz) == 5
    assert sample(text, "actionstyle_redis_up") == 0
