"""Job files in S3-compatible storage (moto's server on loopback).

The backend on its own, and the whole job cycle with a real worker process that shares no folder
with the API.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from service.jobs.s3storage import S3Storage
from tests.service.conftest import JobStack
from tests.service.jobs.conftest import BUCKET, PREFIX
from tests.utils.data import AUDIO_CLIP
from tests.utils.jobs import job_worker, json_lines, submit_job, wait_for_status
from tests.utils.processes import wait_until
from tests.utils.s3 import keys_under, s3_client
from tests.utils.styles import SLOW_STYLE, TEST_STYLE


@pytest.fixture
def storage(s3_endpoint: str, tmp_path: Path) -> S3Storage:
    prefix = f"unit-{uuid.uuid4().hex[:8]}"
    return S3Storage.from_url(f"s3://{BUCKET}/{prefix}", s3_endpoint, tmp_path / "temp")


def test_the_backend_round_trip(storage: S3Storage, tmp_path: Path) -> None:
    (tmp_path / "temp").mkdir()
    job_id, client = uuid.uuid4().hex, storage.client
    upload = tmp_path / "clip.avi"
    upload.write_bytes(b"video bytes")
    assert storage.put(job_id, "input.avi", upload) == (
        f"s3://{BUCKET}/{storage.prefix}/{job_id}/input.avi"
    )
    assert not upload.exists()  # moved in, like the shared folder does
    storage.put_bytes(job_id, "style.img", b"painting")
    with storage.local_copies(job_id, ["input.avi", "style.img"]) as local:
        assert local["input.avi"].read_bytes() == b"video bytes"
        assert local["style.img"].read_bytes() == b"painting"
        folder = local["input.avi"].parent
    assert not folder.exists()  # the worker's copies go with the block

    assert storage.result(job_id) is None
    scratch = storage.scratch(job_id, "attempt")
    scratch.write_bytes(bytes(range(256)) * 4)
    storage.commit_result(job_id, scratch)
    result = storage.result(job_id)
    assert result is not None and result.size == 1024
    assert b"".join(result.iter_range(10, 19)) == bytes(range(10, 20))

    storage.discard(job_id, ["input.avi", "style.img"])
    assert keys_under(client, BUCKET, f"{storage.prefix}/{job_id}/") == [
        f"{storage.prefix}/{job_id}/result.mp4"
    ]
    storage.delete(job_id)
    assert keys_under(client, BUCKET, f"{storage.prefix}/{job_id}/") == []
    with pytest.raises(FileNotFoundError), storage.local_copies(job_id, ["input.avi"]):
        pass
    with pytest.raises(ValueError, match="is not a job id"):
        storage.put_bytes("../../etc", "passwd", b"")


def test_purge_removes_only_jobs_older_than_the_ttl(storage: S3Storage) -> None:
    old, fresh = uuid.uuid4().hex, uuid.uuid4().hex
    storage.put_bytes(old, "style.img", b"old")
    storage.put_blob("classifiers/anonymous/kept.npz", b"kept")  # never expires
    old_written = time.time()
    time.sleep(4.0)
    storage.put_bytes(fresh, "style.img", b"fresh")
    # The cutoff falls 1.5 s after the old write, however long the fresh write took. S3 keeps
    # whole seconds, so the fresh job may look up to a second older than it is: it is still
    # 1.5 s clear of the cutoff unless the purge starts more than 1.5 s after this line.
    assert storage.purge_older_than(time.time() - (old_written + 1.5)) == 1
    # S3 lists keys in byte order, and a random job id may sort either side of "classifiers"
    assert sorted(keys_under(storage.client, BUCKET, f"{storage.prefix}/")) == sorted(
        [f"{storage.prefix}/{fresh}/style.img", f"{storage.prefix}/classifiers/anonymous/kept.npz"]
    )
    assert storage.purge_older_than(0.0) == 0  # throttled: one bucket listing per 5 minutes


def test_kept_files_round_trip(storage: S3Storage) -> None:
    assert storage.get_blob("classifiers/k/a.npz") is None
    storage.put_blob("classifiers/k/a.npz", b"first")
    storage.put_blob("classifiers/k/a.npz", b"second")
    assert storage.get_blob("classifiers/k/a.npz") == b"second"
    assert storage.list_blobs("classifiers/k") == ["classifiers/k/a.npz"]
    assert storage.list_blobs("classifiers/other") == []
    assert storage.delete_blob("classifiers/k/a.npz") is True
    assert storage.delete_blob("classifiers/k/a.npz") is False
    for bad in ("../x/a.npz", f"{uuid.uuid4().hex}/a.npz", "a.npz", "classifiers/../a"):
        with pytest.raises(ValueError, match="is not a storage key"):
            storage.put_blob(bad, b"")


def test_a_classifier_taught_through_the_bucket_serves_every_api_process(
    s3_job_stack: JobStack,
) -> None:
    """Taught by the worker into the bucket; a second API process lists, uses and deletes it."""
    from fastapi.testclient import TestClient

    from service.app import create_app
    from tests.utils.teach import TRAINING_SET, YOYO_TEST_CLIP, training_form

    files, data = training_form(TRAINING_SET, "in-the-bucket")
    created = s3_job_stack.client.post("/classifiers", files=files, data=data)
    assert created.status_code == 202, created.text
    job_id = created.json()["job_id"]
    status = wait_for_status(s3_job_stack.client, job_id, timeout_s=180)
    assert status["state"] == "succeeded", status
    client = s3_job_stack.client.app.state.jobs.storage.client
    prefix = f"{PREFIX}/classifiers/anonymous/"
    assert keys_under(client, BUCKET, prefix) == [f"{prefix}in-the-bucket.npz"]
    assert keys_under(client, BUCKET, f"{PREFIX}/{job_id}/") == []  # the clips are gone
    with TestClient(create_app(s3_job_stack.settings)) as other:
        names = [c["name"] for c in other.get("/models").json()["classifiers"]]
        assert "in-the-bucket" in names
        with YOYO_TEST_CLIP.open("rb") as clip:
            answer = other.post(
                "/classify?model=in-the-bucket", files={"file": (YOYO_TEST_CLIP.name, clip)}
            )
        assert answer.status_code == 200 and answer.json()["model"] == "in-the-bucket"
        assert other.delete("/classifiers/in-the-bucket").status_code == 200
    assert keys_under(client, BUCKET, prefix) == []
    assert s3_job_stack.client.get("/classifiers/in-the-bucket").status_code == 404


def test_a_job_through_the_bucket(s3_job_stack: JobStack, s3_endpoint: str) -> None:
    client, request_id = s3_job_stack.client, f"s3-test-{uuid.uuid4().hex[:8]}"
    created = submit_job(client, AUDIO_CLIP, TEST_STYLE, headers={"X-Request-ID": request_id})
    job_id = created["job_id"]
    final = wait_for_status(client, job_id)
    assert final["state"] == "succeeded", (final, s3_job_stack.worker_log.text[-3000:])
    assert final["frames_done"] == final["frames_total"] == 164

    # Only the result is left in the bucket; nothing was written to any shared folder.
    bucket = s3_client(s3_endpoint)
    assert keys_under(bucket, BUCKET, f"{PREFIX}/{job_id}/") == [f"{PREFIX}/{job_id}/result.mp4"]
    assert not s3_job_stack.settings.storage_dir.exists()
    stored = bucket.get_object(Bucket=BUCKET, Key=f"{PREFIX}/{job_id}/result.mp4")["Body"].read()

    response = client.get(created["result_url"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["accept-ranges"] == "bytes"
    assert response.content == stored and 0 < stored.find(b"moov") < stored.find(b"mdat")
    size = len(stored)
    ranged = client.get(created["result_url"], headers={"Range": "bytes=100-199"})
    assert ranged.status_code == 206
    assert ranged.headers["content-range"] == f"bytes 100-199/{size}"
    assert ranged.content == stored[100:200]
    tail = client.get(created["result_url"], headers={"Range": "bytes=-50"})
    assert tail.status_code == 206 and tail.content == stored[-50:]
    outside = client.get(created["result_url"], headers={"Range": f"bytes={size}-"})
    assert outside.status_code == 416
    assert outside.headers["content-range"] == f"bytes */{size}"
    assert outside.json()["code"] == "range_not_satisfiable"
    head = client.head(created["result_url"], headers={"Range": "bytes=100-199"})
    assert (head.status_code, head.content) == (206, b"")
    assert head.headers["content-range"] == f"bytes 100-199/{size}"
    assert head.headers["content-length"] == "100"

    # The worker's log lines about this job carry the id of the POST that created it.
    def worker_logged_the_end() -> bool:
        return any(
            e.get("request_id") == request_id and "succeeded" in e["message"]
            for e in json_lines(s3_job_stack.worker_log.lines)
        )

    wait_until(worker_logged_the_end, 10, "the worker's log line for the finished job")
    mine = [
        e for e in json_lines(s3_job_stack.worker_log.lines) if e.get("request_id") == request_id
    ]
    assert {e["message"] for e in mine} >= {
        f"job {job_id} started on {job_worker(s3_job_stack.settings.redis_url, job_id)}",
        f"job {job_id} succeeded: 164 frames",
    }
    assert all(e["level"] and e["time"] and e["logger"] for e in mine)


def test_a_cancelled_job_leaves_nothing_in_the_bucket(
    s3_job_stack: JobStack, s3_endpoint: str
) -> None:
    client = s3_job_stack.client
    job_id = submit_job(client, AUDIO_CLIP, SLOW_STYLE)["job_id"]
    wait_for_status(client, job_id, lambda s: s["state"] == "running" and s["frames_done"] > 0)
    assert client.delete(f"/jobs/{job_id}").json()["state"] == "cancelled"
    bucket = s3_client(s3_endpoint)
    # The worker sees the cancel at its next frame and removes the job's objects.
    wait_until(
        lambda: keys_under(bucket, BUCKET, f"{PREFIX}/{job_id}/") == [],
        10,
        "the cancelled job's objects removed",
    )
    assert client.get(f"/jobs/{job_id}").json()["state"] == "cancelled"
