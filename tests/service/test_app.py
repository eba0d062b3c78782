"""The app as a whole: its import boundaries, its committed OpenAPI document, its settings."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from service.app import create_app
from service.openapi import render_openapi
from service.settings import Settings
from tests.utils.data import REPO_ROOT

NO_TORCH = """
import sys
from service.app import create_app
import service.devserver, service.jobs.celery_app, service.jobs.tasks, service.openapi
create_app()
bad = sorted(m for m in sys.modules if m.split(".")[0] in {"torch", "torchvision", "training"})
assert not bad, bad
"""

VIDEO_IS_FRAMEWORK_FREE = """
import sys
import service.video.decode, service.video.preprocess, service.video.upload
bad = sorted(m for m in sys.modules if m.split(".")[0] in {"fastapi", "starlette", "celery"})
assert not bad, bad
"""


@pytest.mark.parametrize("script", [NO_TORCH, VIDEO_IS_FRAMEWORK_FREE], ids=["torch", "web"])
def test_import_boundaries(script: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_committed_openapi_is_current() -> None:
    committed = (REPO_ROOT / "openapi.yaml").read_text()
    assert render_openapi(create_app(Settings())) == committed, (
        "openapi.yaml is out of date: run `make openapi` and commit the result"
    )


def test_every_operation_is_documented() -> None:
    schema = create_app(Settings()).openapi()
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            where = f"{method.upper()} {path}"
            assert operation["operationId"] and operation["summary"], where
            assert "description" not in operation or operation["description"], where
            successes = {code for code in operation["responses"] if code.startswith("2")}
            assert successes & {"200", "202"}, where
            errors = {code for code in operation["responses"] if code[0] in "45"}  # not 304
            if path != "/healthz":
                assert errors, f"{where} documents no error response"
            for code in errors - {"503"} if path == "/readyz" else errors:
                ref = operation["responses"][code]["content"]["application/json"]["schema"]
                assert ref == {"$ref": "#/components/schemas/Problem"}, where


def test_the_memory_arena_setting_reaches_the_loaded_models(
    make_settings: Callable[..., Settings],
) -> None:
    with TestClient(create_app(make_settings(ort_memory_arena="off"))) as client:
        registry = client.app.state.models
        for name in registry.classifier_names:
            assert not registry.classifier(name).session.get_session_options().enable_cpu_mem_arena


def test_the_memory_arena_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTIONSTYLE_ORT_MEMORY_ARENA", "per_session")
    assert Settings().ort_memory_arena == "per_session"
    monkeypatch.setenv("ACTIONSTYLE_ORT_MEMORY_ARENA", "none")
    with pytest.raises(ValidationError, match="'shared', 'per_session' or 'off'"):
        Settings()


@pytest.mark.parametrize(
    ("cores", "threads", "concurrency", "slots"),
    [
        (2, 0, 0, 1),  # onnxruntime's own choice: a thread per core, so one run fills them
        (2, 2, 0, 1),
        (8, 2, 0, 4),
        (2, 1, 0, 2),
        (2, 0, 3, 3),  # as set
    ],
)
def test_inference_slots_fill_the_cores_without_oversubscribing_them(
    monkeypatch: pytest.MonkeyPatch, cores: int, threads: int, concurrency: int, slots: int
) -> None:
    # Two runs of the default at once on 2 cores are no faster than one after the other, and
    # onnxruntime's arena keeps both runs' working memory (docs/benchmarks.md).
    monkeypatch.setattr("os.cpu_count", lambda: cores)
    settings = Settings(ort_intra_op_threads=threads, inference_concurrency=concurrency)
    assert settings.inference_slots() == slots


NOTHING_AT_IMPORT = """
import os
os.environ["ACTIONSTYLE_WORKER_CONCURRENCY"] = "not a number"
import service.app, service.jobs.celery_app, service.jobs.tasks  # reads no settings
from celery import Celery
import gc
ours = [o for o in gc.get_objects() if isinstance(o, Celery) and o.main == "actionstyle"]
assert not ours, "a Celery app was built"
try:
    service.app.create_app()
except Exception as exc:
    assert "worker_concurrency" in str(exc), exc
else:
    raise AssertionError("the bad setting was not read")
"""


def test_importing_the_service_builds_nothing_and_reads_no_settings() -> None:
    result = subprocess.run(
        [sys.executable, "-c", NOTHING_AT_IMPORT],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("setting", ["temp_dir", "storage_dir"])
def test_a_folder_it_cannot_write_stops_the_start_saying_which(
    tmp_path: Path, setting: str
) -> None:
    blocked = tmp_path / "a file, not a folder"
    blocked.write_text("")
    settings = Settings(**{setting: blocked / "uploads"})
    variable = f"ACTIONSTYLE_{setting.upper()}"
    refusal = f"^refusing to start: {variable}=.* cannot be written"
    with pytest.raises(RuntimeError, match=refusal), TestClient(create_app(settings)):
        pass
