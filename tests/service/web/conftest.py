"""Fixtures for the page: the whole service as `make run` starts it, and Debian's chromium."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from service.devserver import free_port
from tests.utils.data import REPO_ROOT
from tests.utils.processes import OutputLog, stop_group, wait_until

CHROMIUM = Path(os.environ.get("ACTIONSTYLE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
STARTUP_TIMEOUT_S = 60


def _missing(what: str) -> None:
    """A missing browser fails in CI (it installs one) and skips on a developer's machine."""
    if os.environ.get("CI"):
        pytest.fail(
            f"{what}; CI must provide it (apt-get install chromium, pip install playwright)"
        )
    pytest.skip(what)


@pytest.fixture(scope="package")  # its event loop ends with the browser tests
def browser() -> Iterator:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed")
    if not os.access(CHROMIUM, os.X_OK):
        _missing(f"no chromium at {CHROMIUM}")
    with sync_playwright() as playwright:
        # Debian's chromium, never a browser that playwright would download.
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


def _ready(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def _live(root: Path, models_dir: Path, extra_env: dict[str, str]) -> Iterator[str]:
    """`python -m service.devserver` (embedded Redis, a worker, uvicorn); yields its base URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "ACTIONSTYLE_REDIS_URL"}}
    env |= {
        "ACTIONSTYLE_MODELS_DIR": str(models_dir),
        "ACTIONSTYLE_STORAGE_DIR": str(root / "storage"),
        "ACTIONSTYLE_TEMP_DIR": str(root / "uploads"),
        "ACTIONSTYLE_ORT_INTRA_OP_THREADS": "1",
        **extra_env,
    }
    argv = [sys.executable, "-m", "service.devserver", "--port", str(port)]
    argv += ["--redis-dir", str(root / "redis")]
    server = subprocess.Popen(
        argv,
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        process_group=0,
    )
    log = OutputLog(server.stdout)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _ready(base_url), STARTUP_TIMEOUT_S, f"/readyz answering\n{log.text}")
        yield base_url
    finally:
        stop_group(server, timeout_s=20)


@pytest.fixture(scope="module")
def live_service(style_models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The whole service as `make run` starts it; yields its base URL."""
    with _live(tmp_path_factory.mktemp("live"), style_models_dir, {}) as base_url:
        yield base_url


PAGE_API_KEY = "page-test-key"


@pytest.fixture(scope="module")
def keyed_live_service(
    style_models_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The same, with ACTIONSTYLE_API_KEYS set: every API call needs PAGE_API_KEY."""
    extra = {"ACTIONSTYLE_API_KEYS": f"{PAGE_API_KEY},another-key"}
    with _live(tmp_path_factory.mktemp("keyed"), style_models_dir, extra) as base_url:
        yield base_url


def drop_connection(page, progress_text: str, seconds: float) -> None:
    """Take the page offline (as a phone losing its signal) until the element `progress_text`
    says it lost contact, then for `seconds` more, then back online."""
    network = page.context.new_cdp_session(page)
    network.send("Network.enable")
    conditions = {"latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
    network.send("Network.emulateNetworkConditions", {"offline": True, **conditions})
    page.wait_for_function(
        "id => document.getElementById(id).textContent"
        " === 'Lost contact with the server; trying again…'",
        arg=progress_text,
        timeout=120_000,
    )
    page.wait_for_timeout(seconds * 1000)
    network.send("Network.emulateNetworkConditions", {"offline": False, **conditions})
