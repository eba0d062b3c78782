"""A worker process loads its styles as it starts, so its first job does not wait for them."""

from __future__ import annotations

import re
import threading

from fastapi.testclient import TestClient

from service.app import create_app
from service.contract.manifest import load_manifest
from service.inference.styles import StyleEngines
from tests.service.conftest import JobSettings, worker_env
from tests.service.jobs.test_stylize_jobs import finished, submit, wait_for_job
from tests.utils.data import AUDIO_CLIP
from tests.utils.processes import running_worker, wait_until
from tests.utils.styles import TEST_STYLE

# Logged once by each worker process as it builds what jobs need (tasks._job_parts).
SET_UP = "style jobs paint"
WARMED = re.compile(r"warmed up in [0-9.]+ s: ([^\"]*)")


def test_a_worker_is_ready_for_every_style_before_its_first_job(
    redis_url: str, job_settings: JobSettings
) -> None:
    settings = job_settings(redis_url.rsplit("/", 1)[0] + "/7")  # a queue of its own
    styles = [entry.name for entry in load_manifest(settings.models_dir).styles]
    with running_worker(worker_env(settings), "warm") as (_, log):
        wait_until(lambda: WARMED.search(log.text) is not None, 60, "the worker's warm-up")
        warmed = WARMED.search(log.text)
        assert warmed is not None and warmed.group(1).split(", ") == styles
        with TestClient(create_app(settings)) as client:
            job_id = submit(client, AUDIO_CLIP, TEST_STYLE)["job_id"]
            assert wait_for_job(client, job_id, finished, timeout_s=120)["state"] == "succeeded"
        assert log.text.count(SET_UP) == 1  # the job found everything built


def test_without_warm_up_a_style_loads_on_its_first_job(
    redis_url: str, job_settings: JobSettings
) -> None:
    settings = job_settings(redis_url.rsplit("/", 1)[0] + "/7")
    env = worker_env(settings) | {"ACTIONSTYLE_WORKER_WARM_UP": "false"}
    with running_worker(env, "cold") as (_, log), TestClient(create_app(settings)) as client:
        assert SET_UP not in log.text
        job_id = submit(client, AUDIO_CLIP, TEST_STYLE)["job_id"]
        assert wait_for_job(client, job_id, finished, timeout_s=120)["state"] == "succeeded"
        assert log.text.count(SET_UP) == 1 and WARMED.search(log.text) is None


def test_two_threads_asking_first_for_a_style_share_one_network(
    style_models_dir, monkeypatch
) -> None:
    engines = StyleEngines(style_models_dir, load_manifest(style_models_dir), threads=1)
    loads = []
    load = engines._feedforward

    def counted(name, arena):
        loads.append(name)
        return load(name, arena)

    monkeypatch.setattr(engines, "_feedforward", counted)
    got: list[object] = []
    threads = [
        threading.Thread(target=lambda: got.append(engines.named(TEST_STYLE))) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert loads == [TEST_STYLE] and len({id(network) for network in got}) == 1
