"""A client that stops sending in the middle of its upload: dropped with a 408, never held."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import httpx

from tests.utils.data import YOYO_CLIP
from tests.utils.processes import api_env, running_api

IDLE_TIMEOUT_S = 1.0
# Every route that reads an upload, and the multipart field it reads first.
UPLOAD_ROUTES = {
    "/classify": 'name="file"; filename="clip.avi"',
    "/stylize": 'name="file"; filename="clip.avi"',
    "/stylize/preview": 'name="image"; filename="frame.png"',
    "/classifiers": 'name="files"; filename="clip.avi"',
}


def send_part_and_stall(url: str, path: str, disposition: str) -> tuple[int, dict, float]:
    """Announce a large body, send its first bytes and stop: the answer and how long it took."""
    host, port = url.removeprefix("http://").split(":")
    part = f"--cut\r\nContent-Disposition: form-data; {disposition}\r\n\r\n".encode()
    part += YOYO_CLIP.read_bytes()[:20_000]
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: multipart/form-data; "
        f"boundary=cut\r\nContent-Length: {len(part) + 5_000_000}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port)), timeout=20) as connection:
        connection.sendall(head + part)
        sent = time.monotonic()
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += connection.recv(65536)
        waited = time.monotonic() - sent
        headers, body = answer.split(b"\r\n\r\n", 1)
        length = int(
            next(
                line
                for line in headers.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ).split(b":")[1]
        )
        while len(body) < length:
            body += connection.recv(65536)
    status = int(headers.split(b" ", 2)[1])
    return status, json.loads(body), waited


def test_a_stalled_upload_is_dropped_on_every_route(
    style_models_dir: Path, redis_url: str, tmp_path: Path
) -> None:
    env = api_env(style_models_dir, tmp_path, redis_url.rsplit("/", 1)[0] + "/9")
    env["ACTIONSTYLE_UPLOAD_IDLE_TIMEOUT_S"] = str(IDLE_TIMEOUT_S)
    with running_api(env) as url:
        for path, disposition in UPLOAD_ROUTES.items():
            status, body, waited = send_part_and_stall(url, path, disposition)
            assert (status, body["code"]) == (408, "upload_stalled"), (path, body)
            assert body["detail"] == (
                "no data arrived for 1 s, so the upload was dropped; check the connection and "
                "send the file again"
            )
            assert IDLE_TIMEOUT_S - 0.1 < waited < IDLE_TIMEOUT_S + 5, (path, waited)
        assert not any((tmp_path / "uploads").rglob("*.*"))  # nothing spooled is left behind

        # A slow but steady upload is not cut off: each pause is under the idle limit.
        def trickle():
            data = YOYO_CLIP.read_bytes()
            step = len(data) // 6 + 1
            for start in range(0, len(data), step):
                yield data[start : start + step]
                time.sleep(IDLE_TIMEOUT_S * 0.6)

        boundary = "slow"
        opening = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            'filename="clip.avi"\r\n\r\n'
        ).encode()

        def body():
            yield opening
            yield from trickle()
            yield f"\r\n--{boundary}--\r\n".encode()

        answer = httpx.post(
            f"{url}/classify",
            content=body(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
