"""The client against openapi.yaml: its dataclasses, the requests it sends, its dependencies."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from actionstyle_client import Client
from actionstyle_client.models import RESULT_TYPES, JobState

from tests.client.conftest import CLIENT_DIR
from tests.utils.data import REPO_ROOT

SPEC = yaml.safe_load((REPO_ROOT / "openapi.yaml").read_text())
SCHEMAS = SPEC["components"]["schemas"]
JOB_ID = "0123456789abcdef0123456789abcdef"


def _required(field: dataclasses.Field) -> bool:
    no_default = field.default is dataclasses.MISSING
    return no_default and field.default_factory is dataclasses.MISSING


@pytest.mark.parametrize("cls", RESULT_TYPES, ids=lambda cls: cls.__name__)
def test_each_dataclass_matches_its_schema(cls: type) -> None:
    schema = SCHEMAS[cls.SCHEMA]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    assert set(fields) == set(schema["properties"]), "fields differ from the schema's properties"
    required_fields = {name for name, f in fields.items() if _required(f)}
    assert required_fields == set(schema.get("required", [])), "required fields differ"


def test_the_job_states_are_the_schemas() -> None:
    assert [state.value for state in JobState] == SCHEMAS["JobState"]["enum"]


def _answer(request: httpx.Request) -> httpx.Response:
    """Minimal valid bodies, so every client call runs to its end."""
    path = request.url.path
    if path == "/classifiers":
        body = {"job_id": JOB_ID, "status_url": "", "classifier": "c", "classifier_url": ""}
        return httpx.Response(202, json=body)
    if path.startswith("/classifiers/"):
        return httpx.Response(200, json=_entry())
    if path == "/stylize":
        return httpx.Response(202, json={"job_id": JOB_ID, "status_url": "", "result_url": ""})
    if path == "/models":
        body = {"default_classifier": "m", "classifiers": [], "styles": [], "custom_style": True}
        return httpx.Response(200, json=body)
    if path.endswith("/result"):
        return httpx.Response(200, content=b"mp4")
    if path.startswith("/jobs/"):
        return httpx.Response(200, json=_status())
    video = {"duration_s": 1, "fps": 25, "frames": 25, "width": 4, "height": 4}
    return httpx.Response(
        200,
        json={
            "model": "m",
            "predictions": [{"label": "a", "score": 1.0}],
            "confident": True,
            "top_label": "a",
            "video": video,
            "timings_ms": {"decode": 1, "inference": 1, "total": 2},
            "segments": [],
        },
    )


def _status() -> dict[str, Any]:
    return {
        "job_id": JOB_ID,
        "state": "succeeded",
        "style": "s",
        "progress": 1,
        "frames_done": 1,
        "frames_total": 1,
        "eta_s": None,
        "error": None,
        "created_at": "2024-01-01T00:00:00Z",
        "started_at": None,
        "finished_at": None,
    }


def _entry() -> dict[str, Any]:
    return {
        "name": "c",
        "family": "custom",
        "display_name": "c",
        "file": "c.npz",
        "sha256": "0" * 64,
        "input_name": "clip",
        "output_name": "logits",
        "input": {},
        "labels": ["a", "b"],
        "metrics": {"cross_validated_top1": 0.5, "cv_folds": 3, "clips_per_label": {"a": 3}},
    }


def _operation(method: str, path: str) -> dict[str, Any]:
    for template, operations in SPEC["paths"].items():
        pattern = re.sub(r"\{[^}]+\}", "[^/]+", template)
        if re.fullmatch(pattern, path) and method.lower() in operations:
            return operations[method.lower()]
    raise AssertionError(f"{method} {path} is not in openapi.yaml")


def _form_fields(request: httpx.Request) -> set[str]:
    return {name.decode() for name in re.findall(rb'form-data; name="([^"]+)"', request.read())}


def test_every_request_the_client_sends_is_in_the_spec(tmp_path: Path) -> None:
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return _answer(request)

    clip, painting = tmp_path / "clip.avi", tmp_path / "painting.jpg"
    clip.write_bytes(b"video"), painting.write_bytes(b"jpeg")
    archive = tmp_path / "clips.zip"
    archive.write_bytes(b"PK")
    with Client("http://service", transport=httpx.MockTransport(record)) as client:
        client.classify(clip, model="m", top_k=3, segments=True, window_s=2.0)
        client.stylize(clip, style="vangogh").wait().download(tmp_path / "out.mp4")
        client.stylize(clip, style_image=painting)
        client.jobs.cancel(JOB_ID)
        client.models()
        taught = client.teach("c", clips={"a": [clip, clip], "b": [painting]}).wait()
        assert taught.classifier().cross_validated_top1 == 0.5
        client.teach("c", archive=archive)
        client.classifiers.get("c")
        client.classifiers.delete("c")
    assert len(sent) == 13
    for request in sent:
        operation = _operation(request.method, request.url.path)
        known = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
        assert set(request.url.params) <= known, request.url
        if request.method == "POST":
            schema = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
            assert _form_fields(request) <= set(schema["properties"]), request.url
            assert set(schema.get("required", [])) <= _form_fields(request), request.url
    teach_clips, teach_archive = (r.read() for r in sent if r.url.path == "/classifiers")
    # One `labels` value per file, in the files' order.
    assert re.findall(rb'name="labels"\r\n\r\n([^\r]*)', teach_clips) == [b"a", b"a", b"b"]
    assert re.findall(rb'name="files"; filename="([^"]+)"', teach_clips) == [
        b"clip.avi",
        b"clip.avi",
        b"painting.jpg",
    ]
    assert _form_fields(sent[-3]) == {"name", "archive"}


def test_teach_takes_clips_or_an_archive(tmp_path: Path) -> None:
    with Client("http://service", transport=httpx.MockTransport(_answer)) as client:
        with pytest.raises(ValueError, match="give exactly one of clips= or archive="):
            client.teach("c")
        with pytest.raises(ValueError, match="give exactly one of clips= or archive="):
            client.teach("c", clips={"a": [tmp_path]}, archive=tmp_path)
        with pytest.raises(FileNotFoundError, match="no such file"):
            client.teach("c", clips={"a": [tmp_path / "gone.mp4"]})


def test_strength_is_sent_as_a_form_value_and_checked_first(tmp_path: Path) -> None:
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return _answer(request)

    clip = tmp_path / "clip.avi"
    clip.write_bytes(b"video")
    with Client("http://service", transport=httpx.MockTransport(record)) as client:
        client.stylize(clip, style="vangogh", strength=0.5)
        client.stylize(clip, style="vangogh")
        for wrong in (0, -0.5, 1.5, float("nan")):
            with pytest.raises(ValueError, match="strength must be above 0 and at most 1"):
                client.stylize(clip, style="vangogh", strength=wrong)
    values = [re.search(rb'name="strength"\r\n\r\n([^\r]*)', r.read()).group(1) for r in sent]
    assert values == [b"0.5", b"1.0"]


def test_the_package_needs_only_httpx() -> None:
    project = tomllib.loads((CLIENT_DIR / "pyproject.toml").read_text())["project"]
    assert [re.split(r"[<>=!~ ]", dep)[0] for dep in project["dependencies"]] == ["httpx"]
    assert project["scripts"] == {"actionstyle": "actionstyle_client.cli:main"}
    # Importing the whole client (and its command line) loads nothing of the service's stack.
    code = (
        "import sys, json, actionstyle_client, actionstyle_client.cli, actionstyle_client.batch;"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=CLIENT_DIR
    )
    modules = set(json.loads(loaded.stdout))
    forbidden = {"torch", "onnxruntime", "fastapi", "numpy", "cv2", "service", "pydantic"}
    assert not modules & forbidden
