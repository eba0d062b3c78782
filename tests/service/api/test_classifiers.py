"""Teach a new action through the API, from POST /classifiers to DELETE, with a real worker.

A real worker trains it, /models lists it, /classify uses it (segments too), and DELETE removes
it; with API keys, it belongs to its key only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.service.conftest import JobStack
from tests.utils.jobs import wait_for_status
from tests.utils.processes import wait_until
from tests.utils.teach import TRAINING_SET, YOYO_TEST_CLIP, training_form, training_zip

NAME = "yoyo-or-punch"


@pytest.fixture(scope="module")
def taught(job_stack: JobStack) -> Iterator[dict]:
    """One classifier taught by the real worker from six clips; removed afterwards."""
    files, data = training_form(TRAINING_SET, NAME)
    response = job_stack.client.post("/classifiers", files=files, data=data)
    assert response.status_code == 202, response.text
    created = response.json()
    assert response.headers["location"] == created["status_url"]
    assert created["classifier"] == NAME and created["classifier_url"] == f"/classifiers/{NAME}"
    status = wait_for_status(job_stack.client, created["job_id"], timeout_s=180)
    assert status["state"] == "succeeded", (status["error"], job_stack.worker_log.text[-2000:])
    assert (status["frames_done"], status["frames_total"]) == (6, 7)  # clips, then training
    assert (status["kind"], status["classifier"], status["style"]) == ("teach", NAME, "")
    kept = job_stack.storage_dir / "classifiers" / "anonymous" / f"{NAME}.npz"
    yield status | {"model_bytes": kept.read_bytes()}
    job_stack.client.delete(f"/classifiers/{NAME}")


def _classify(client: TestClient, query: str, headers: dict | None = None):
    with YOYO_TEST_CLIP.open("rb") as clip:
        return client.post(
            f"/classify?{query}", files={"file": (YOYO_TEST_CLIP.name, clip)}, headers=headers
        )


def test_the_taught_classifier_is_listed_with_its_measures(job_stack: JobStack, taught) -> None:
    entry = job_stack.client.get(f"/classifiers/{NAME}").json()
    assert entry["family"] == "custom" and entry["labels"] == ["punch", "yoyo"]
    metrics = entry["metrics"]
    assert metrics["clips_per_label"] == {"punch": 3, "yoyo": 3}
    assert metrics["cv_folds"] == 3 and 0.0 <= metrics["cross_validated_top1"] <= 1.0
    assert entry["open_set"]["threshold"] > 0
    listed = job_stack.client.get("/models").json()["classifiers"]
    assert [c["name"] for c in listed if c["family"] == "custom"] == [NAME]
    assert listed[-1] == entry
    # The clips are gone from the job storage; only the classifier is kept.
    assert list((job_stack.storage_dir / taught["job_id"]).glob("*")) == []
    kept = job_stack.storage_dir / "classifiers" / "anonymous" / f"{NAME}.npz"
    assert kept.is_file() and kept.stat().st_size < 100_000


def test_classify_with_it_whole_and_in_segments(job_stack: JobStack, taught) -> None:
    response = _classify(job_stack.client, f"model={NAME}&segments=true&window_s=2")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == NAME
    assert [p["label"] for p in body["predictions"]][0] == "yoyo"
    assert body["ood_distance"] is not None
    assert len(body["segments"]) >= 2
    assert all(len(s["predictions"]) == 2 for s in body["segments"])


def test_the_jobs_result_points_to_the_classifier(job_stack: JobStack, taught) -> None:
    response = job_stack.client.get(f"/jobs/{taught['job_id']}/result")
    assert (response.status_code, response.json()) == (
        409,
        {
            "code": "result_is_classifier",
            "detail": f"job '{taught['job_id']}' teaches the classifier '{NAME}': its result is "
            f"no video, it is GET /classifiers/{NAME} (use it with POST /classify?model={NAME})",
        },
    )


def test_a_taken_name_is_refused(job_stack: JobStack, taught) -> None:
    files, data = training_form(TRAINING_SET, NAME)
    response = job_stack.client.post("/classifiers", files=files, data=data)
    assert (response.status_code, response.json()) == (
        409,
        {
            "code": "classifier_exists",
            "detail": f"you already have a classifier named '{NAME}'; delete it first or "
            "choose another name",
        },
    )
    files, data = training_form(TRAINING_SET, "effnet_temporal")
    response = job_stack.client.post("/classifiers", files=files, data=data)
    assert response.status_code == 409
    assert response.json()["detail"] == (
        "'effnet_temporal' is the name of a shipped model; choose another name"
    )


def test_an_archive_job_is_queued_and_cancelled_leaving_nothing(job_stack: JobStack) -> None:
    archive = training_zip(TRAINING_SET, root="my clips")
    response = job_stack.client.post(
        "/classifiers", files={"archive": ("clips.zip", archive)}, data={"name": "cancelled"}
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    result = job_stack.client.get(f"/jobs/{job_id}/result")  # never a video, whatever its state
    assert (result.status_code, result.json()["code"]) == (409, "result_is_classifier")
    cancelled = job_stack.client.delete(f"/jobs/{job_id}")
    assert cancelled.status_code in (200, 409)  # 409: it finished before the cancel arrived
    status = wait_for_status(job_stack.client, job_id, timeout_s=120)
    if status["state"] == "cancelled":
        # A running job's worker sees the cancel before its next clip, then removes the clips.
        folder = job_stack.storage_dir / job_id
        wait_until(lambda: not folder.exists(), 10, "the cancelled job's clips removed")
        assert job_stack.client.get("/classifiers/cancelled").status_code == 404
    job_stack.client.delete("/classifiers/cancelled")


def test_delete_removes_it_for_good(job_stack: JobStack, taught) -> None:
    deleted = job_stack.client.delete(f"/classifiers/{NAME}")
    assert (deleted.status_code, deleted.json()["name"]) == (200, NAME)
    assert job_stack.client.get(f"/classifiers/{NAME}").json()["code"] == "classifier_not_found"
    assert job_stack.client.delete(f"/classifiers/{NAME}").status_code == 404
    response = _classify(job_stack.client, f"model={NAME}")
    assert (response.status_code, response.json()["code"]) == (404, "unknown_model")


def test_with_api_keys_a_classifier_belongs_to_its_key(
    job_stack: JobStack, taught, redis_url: str, tmp_path: Path
) -> None:
    """A classifier stored for key alpha: beta gets 404 everywhere, as for another's job."""
    from service.api.auth import client_id
    from service.custom.models import storage_key

    settings = Settings(
        models_dir=job_stack.settings.models_dir,
        storage_dir=tmp_path / "storage",
        temp_dir=tmp_path / "uploads",
        redis_url=redis_url.rsplit("/", 1)[0] + "/4",
        ort_intra_op_threads=1,
        api_keys="alpha,beta",
    )
    redis.Redis.from_url(settings.redis_url).flushdb()
    with TestClient(create_app(settings)) as client:
        files, data = training_form(TRAINING_SET, "mine")
        alpha, beta = {"X-API-Key": "alpha"}, {"X-API-Key": "beta"}
        response = client.post("/classifiers", files=files, data=data, headers=alpha)
        assert response.status_code == 202  # queued (no worker reads db 4): cancel it
        client.delete(f"/jobs/{response.json()['job_id']}", headers=alpha)
        # Put a taught classifier in alpha's folder, as a worker would.
        target = settings.storage_dir / storage_key("mine", client_id("alpha"))
        target.parent.mkdir(parents=True)
        target.write_bytes(taught["model_bytes"])
        assert client.get("/classifiers/mine", headers=alpha).status_code == 200
        assert client.get("/classifiers/mine", headers=beta).status_code == 404
        customs = [
            c["name"]
            for c in client.get("/models", headers=beta).json()["classifiers"]
            if c["family"] == "custom"
        ]
        assert customs == []
        assert _classify(client, "model=mine", beta).status_code == 404
        assert _classify(client, "model=mine", alpha).status_code == 200
        assert client.delete("/classifiers/mine", headers=beta).status_code == 404
        assert client.delete("/classifiers/mine", headers=alpha).status_code == 200
