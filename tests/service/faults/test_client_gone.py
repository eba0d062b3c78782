"""A client that goes away in the middle of its upload: routine, not a server error."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx

from tests.utils.data import YOYO_CLIP
from tests.utils.metrics import samples
from tests.utils.processes import api_env, running_api

ANNOUNCED_BYTES = 5_000_000
SENT_BYTES = 300_000


def upload_half_and_hang_up(url: str, path: str) -> None:
    host, port = url.removeprefix("http://").split(":")
    part = (
        b'--cut\r\nContent-Disposition: form-data; name="file"; filename="clip.avi"\r\n'
        b"Content-Type: video/x-msvideo\r\n\r\n"
    )
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: multipart/form-data; "
        f"boundary=cut\r\nContent-Length: {len(part) + ANNOUNCED_BYTES}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port))) as connection:
        connection.sendall(head + part + YOYO_CLIP.read_bytes()[:SENT_BYTES])
        time.sleep(0.5)  # the API is reading the body when the client goes


def requests_counted(metrics: str, route: str, status: str) -> float:
    counted = samples(metrics, "actionstyle_http_requests_total")
    return sum(
        value for labels, value in counted if (labels["route"], labels["status"]) == (route, status)
    )


def test_an_upload_cut_short_is_counted_as_the_client_gone(
    style_models_dir: Path, redis_url: str, tmp_path: Path, shared_data: Path
) -> None:
    with running_api(
        api_env(style_models_dir, tmp_path, redis_url.rsplit("/", 1)[0] + "/9")
    ) as url:
        for path in ("/classify", "/stylize"):
            upload_half_and_hang_up(url, path)
        deadline = time.monotonic() + 10
        while True:
            metrics = httpx.get(f"{url}/metrics", timeout=10).text
            gone = [requests_counted(metrics, path, "499") for path in ("/classify", "/stylize")]
            if gone == [1, 1] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert gone == [1, 1], metrics
        assert [requests_counted(metrics, path, "500") for path in ("/classify", "/stylize")] == [
            0,
            0,
        ]
        assert not any((tmp_path / "uploads").rglob("*.*"))  # the partial uploads are gone
        # and the API serves the next request as usual
        with YOYO_CLIP.open("rb") as clip:
            answer = httpx.post(f"{url}/classify", files={"file": (YOYO_CLIP.name, clip)})
        assert answer.status_code == 200, answer.text
