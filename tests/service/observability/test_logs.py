"""JSON log lines and the request id: honoured or generated, returned, and in every line."""

from __future__ import annotations

import json
import logging
import re

import pytest
from fastapi.testclient import TestClient

from service.observability.logs import JsonFormatter, accept_request_id, request_id_context


def format_line(message: str, **extra: object) -> dict:
    record = logging.LogRecord("actionstyle.test", logging.INFO, __file__, 1, message, (), None)
    for key, value in extra.items():
        setattr(record, key, value)
    return json.loads(JsonFormatter().format(record))


def test_a_line_is_one_json_object_with_the_request_id() -> None:
    with request_id_context("abc-123"):
        entry = format_line("job 1 started", job_id="1", frames=5)
    assert entry["message"] == "job 1 started" and entry["level"] == "INFO"
    assert entry["logger"] == "actionstyle.test" and entry["request_id"] == "abc-123"
    assert entry["job_id"] == "1" and entry["frames"] == 5
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"])
    assert "request_id" not in format_line("outside any request")


def test_an_exception_is_kept_in_the_line() -> None:
    try:
        raise ValueError("broken")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), None)
        import sys

        record.exc_info = sys.exc_info()
    entry = json.loads(JsonFormatter().format(record))
    assert "ValueError: broken" in entry["exception"]


@pytest.mark.parametrize(
    ("sent", "kept"),
    [("client-id-1", True), ("a" * 128, True), ("a" * 129, False), ("bad id\r\n", False)],
)
def test_a_sane_client_id_is_kept_and_others_replaced(sent: str, kept: bool) -> None:
    accepted = accept_request_id(sent)
    assert (accepted == sent) is kept
    if not kept:
        assert re.fullmatch(r"[0-9a-f]{32}", accepted)


def test_the_response_carries_the_request_id(client: TestClient) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": "from-the-client"})
    assert response.headers["x-request-id"] == "from-the-client"
    generated = client.get("/healthz").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert client.get("/healthz").headers["x-request-id"] != generated
    failed = client.get("/jobs/not-an-id", headers={"X-Request-ID": "on-errors-too"})
    assert failed.status_code == 422 and failed.headers["x-request-id"] == "on-errors-too"


def test_the_access_line_names_the_route_and_the_request_id(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="actionstyle.access"):
        client.get("/healthz", headers={"X-Request-ID": "access-line"})
    [record] = [r for r in caplog.records if r.name == "actionstyle.access"]
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "GET /healthz 200"
    assert entry["route"] == "/healthz" and entry["status"] == 200
    assert entry["duration_ms"] >= 0
    assert entry["request_id"] == "access-line"
