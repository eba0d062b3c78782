"""Inference runs a bounded number at a time; the other requests wait and still get answered."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.inference import classifier as classifier_module
from tests.utils.data import YOYO_CLIP


class InFlight:
    """Wraps the real inference step and records how many calls ran at once."""

    def __init__(self, real) -> None:
        self.real, self.now, self.most, self.lock = real, 0, 0, threading.Lock()

    def __call__(self, *args, **kwargs):
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            time.sleep(0.2)  # long enough that unbounded requests would overlap
            return self.real(*args, **kwargs)
        finally:
            with self.lock:
                self.now -= 1


@pytest.mark.parametrize("slots", [1, 2])
def test_inference_runs_at_most_the_configured_number_at_once(
    make_settings, monkeypatch, slots: int
) -> None:
    in_flight = InFlight(classifier_module._run)
    monkeypatch.setattr(classifier_module, "_run", in_flight)
    data = YOYO_CLIP.read_bytes()
    with TestClient(create_app(make_settings(inference_concurrency=slots))) as client:

        def post(_: int) -> int:
            files = {"file": (YOYO_CLIP.name, data, "video/x-msvideo")}
            return client.post("/classify", files=files).status_code

        with ThreadPoolExecutor(max_workers=5) as pool:
            codes = list(pool.map(post, range(5)))
    assert codes == [200] * 5
    assert in_flight.most == slots
