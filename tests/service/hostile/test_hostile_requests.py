"""Hostile request shapes: wrong fields, bogus names and ids, names that try to be paths.

A real video under a hostile file name is accepted, and kept only under the app's own name.
"""

from __future__ import annotations

import pytest

from tests.service.hostile.conftest import Sandbox
from tests.service.hostile.test_hostile_uploads import ENDPOINTS, assert_nothing_kept
from tests.utils.data import YOYO_CLIP
from tests.utils.styles import TEST_STYLE

JOB = "0" * 32


def _fields(endpoint: str) -> dict[str, str]:
    return {"style": TEST_STYLE} if endpoint == "/stylize" else {}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_wrong_field_name(sandbox: Sandbox, endpoint: str) -> None:
    response = sandbox.client.post(
        endpoint, files={"video": (YOYO_CLIP.name, YOYO_CLIP.read_bytes())}, data=_fields(endpoint)
    )
    assert response.status_code == 422
    assert response.json() == {
        "code": "missing_file",
        "detail": "the request has no multipart field 'file'",
    }
    assert_nothing_kept(sandbox)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize(
    "content_type",
    ["multipart/form-data", "application/json", "text/plain; charset=utf-8", ""],
    ids=["no-boundary", "json", "text", "none"],
)
def test_body_that_is_not_a_multipart_upload(
    sandbox: Sandbox, endpoint: str, content_type: str
) -> None:
    response = sandbox.client.post(
        endpoint, content=b'{"file": "clip.avi"}', headers={"content-type": content_type}
    )
    assert response.status_code == 422
    assert response.json() == {
        "code": "missing_file",
        "detail": "send the video as multipart/form-data with the file in a field named 'file'",
    }
    assert_nothing_kept(sandbox)


@pytest.mark.parametrize(
    "model", ["../../etc/passwd", "effnet_temporal\x00", "модель", "%00"], ids=str.encode
)
def test_bogus_model(sandbox: Sandbox, model: str) -> None:
    known = ", ".join(c["name"] for c in sandbox.client.get("/models").json()["classifiers"])
    response = sandbox.client.post(
        "/classify", params={"model": model}, files={"file": ("a.avi", YOYO_CLIP.read_bytes())}
    )
    assert response.status_code == 404
    assert response.json() == {
        "code": "unknown_model",
        "detail": f"unknown model '{model}'; known models: {known}",
    }
    assert_nothing_kept(sandbox)


def test_model_name_too_long(sandbox: Sandbox) -> None:
    response = sandbox.client.post(
        "/classify", params={"model": "m" * 101}, files={"file": ("a.avi", b"")}
    )
    assert response.status_code == 422
    assert response.json() == {
        "code": "invalid_parameter",
        "detail": "query parameter 'model': String should have at most 100 characters",
    }


@pytest.mark.parametrize("style", ["../../etc/passwd", "vangogh; rm -rf /", "🎨"])
def test_bogus_style(sandbox: Sandbox, style: str) -> None:
    response = sandbox.client.post(
        "/stylize", files={"file": (YOYO_CLIP.name, YOYO_CLIP.read_bytes())}, data={"style": style}
    )
    assert response.status_code == 422
    assert response.json()["code"] == "unknown_style"
    assert response.json()["detail"].startswith(f"unknown style '{style}'; known styles: ")
    assert_nothing_kept(sandbox)


def test_style_name_over_its_cap(sandbox: Sandbox) -> None:
    response = sandbox.client.post(
        "/stylize",
        files={"file": (YOYO_CLIP.name, YOYO_CLIP.read_bytes())},
        data={"style": "s" * 201},
    )
    assert response.status_code == 422
    assert response.json() == {
        "code": "invalid_parameter",
        "detail": "the field 'style' is larger than the limit of 200 bytes",
    }
    assert_nothing_kept(sandbox)


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        # The decoded slashes make it a path no route has.
        ("/jobs/..%2F..%2Fetc%2Fpasswd", 404, "not_found"),
        ("/jobs/%2e%2e", 422, "invalid_parameter"),
        ("/jobs/" + JOB + "%00", 422, "invalid_parameter"),
        ("/jobs/" + "é" * 32, 422, "invalid_parameter"),
        ("/jobs/" + JOB, 404, "job_not_found"),
        ("/jobs/" + JOB + "/result", 404, "job_not_found"),
    ],
)
@pytest.mark.parametrize("method", ["get", "delete"])
def test_bogus_job_ids(sandbox: Sandbox, method: str, path: str, status: int, code: str) -> None:
    if method == "delete" and path.endswith("/result"):
        status, code = 405, "method_not_allowed"
    response = sandbox.client.request(method, path)
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert response.json()["detail"]


HOSTILE_NAMES = [
    "../../../../tmp/actionstyle-escape.avi",
    "..\\..\\windows\\actionstyle-escape.avi",
    "/etc/actionstyle-escape.avi",
    "видео 🎬 ñ.avi",
    "a" * 4000 + ".avi",
]


@pytest.mark.parametrize(
    "filename", HOSTILE_NAMES, ids=["dotdot", "backslash", "abs", "unicode", "long"]
)
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_hostile_file_name_on_a_real_video(sandbox: Sandbox, endpoint: str, filename: str) -> None:
    response = sandbox.client.post(
        endpoint, files={"file": (filename, YOYO_CLIP.read_bytes())}, data=_fields(endpoint)
    )
    if endpoint == "/classify":
        assert response.status_code == 200, response.text
        assert response.json()["video"]["frames"] == 187
    else:
        assert response.status_code == 202, response.text
        job_id = response.json()["job_id"]
        stored = sorted(p.relative_to(sandbox.storage_dir) for p in sandbox.storage_dir.rglob("*"))
        assert [str(p) for p in stored] == [job_id, f"{job_id}/input.avi"]
        assert sandbox.client.delete(f"/jobs/{job_id}").json()["state"] == "cancelled"
    assert_nothing_kept(sandbox)


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("options", "/jobs/" + JOB, "DELETE, GET"),
        ("put", "/jobs/" + JOB + "/result", "GET, HEAD"),
        ("get", "/stylize", "POST"),
    ],
)
def test_wrong_method_names_every_allowed_one(
    sandbox: Sandbox, method: str, path: str, allow: str
) -> None:
    response = sandbox.client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert response.json() == {"code": "method_not_allowed", "detail": "Method Not Allowed"}
