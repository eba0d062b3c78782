"""Stylize jobs end to end: the API in-process, a real Redis, a real Celery worker process."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.service.conftest import JobStack
from tests.utils.corpus import real_frames, write_video
from tests.utils.data import AUDIO_CLIP, CLIPS
from tests.utils.media import image_bytes
from tests.utils.metrics import sample
from tests.utils.processes import closed_port
from tests.utils.styles import SLOW_STYLE, TEST_STYLE

JOB_TIMEOUT_S = 120
CANCEL_WITHIN_S = 2.0


def submit(
    client: TestClient,
    clip: Path,
    style: str | None = None,
    strength: str | None = None,
    **files: Any,
) -> dict:
    data = {"style": style} if style is not None else {}
    data |= {"strength": strength} if strength is not None else {}
    with clip.open("rb") as video:
        response = client.post("/stylize", files={"file": (clip.name, video), **files}, data=data)
    assert response.status_code == 202, response.text
    return response.json()


def job(client: TestClient, job_id: str) -> dict:
    response = client.get(f"/jobs/{job_id}")
    assert response.status_code == 200, response.text
    return response.json()


def wait_for_job(
    client: TestClient,
    job_id: str,
    until,
    timeout_s: float = JOB_TIMEOUT_S,
    seen: list[dict] | None = None,
) -> dict:
    """Poll the job until `until(status)`; every status seen is appended to `seen`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = job(client, job_id)
        if seen is not None:
            seen.append(status)
        if until(status):
            return status
        time.sleep(0.05)
    raise TimeoutError(f"job {job_id} did not get there within {timeout_s} s: {status}")


def finished(status: dict) -> bool:
    return status["state"] in {"succeeded", "failed", "cancelled"}


def running_with_progress(status: dict) -> bool:
    assert status["state"] in {"queued", "running"}, status
    return status["state"] == "running" and status["frames_done"] > 0


def test_full_cycle_on_a_clip_with_audio(job_stack: JobStack, tmp_path: Path) -> None:
    client = job_stack.client
    created = submit(client, AUDIO_CLIP, TEST_STYLE)
    job_id = created["job_id"]
    assert created["status_url"] == f"/jobs/{job_id}"
    assert created["result_url"] == f"/jobs/{job_id}/result"

    seen: list[dict] = []
    final = wait_for_job(client, job_id, finished, seen=seen)
    assert final["state"] == "succeeded", (final, job_stack.worker_log.text[-3000:])
    assert final["progress"] == 1.0 and final["frames_done"] == final["frames_total"] == 164
    assert final["error"] is None and final["finished_at"] >= final["created_at"]
    assert any(0 < s["progress"] < 1 and s["state"] == "running" for s in seen), seen
    assert any(s["eta_s"] is not None and s["eta_s"] > 0 for s in seen), seen
    # The worker paints frames side by side as configured (tests/service/conftest.py: 2).
    assert "style jobs paint 2 frames at once (threads per frame: 1)" in job_stack.worker_log.text

    response = client.get(created["result_url"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp4"
    # It downloads named after the upload and the style, as the command line names it.
    name = f"{AUDIO_CLIP.stem}.{TEST_STYLE}.mp4"
    assert final["result_name"] == name
    assert response.headers["content-disposition"] == f'inline; filename="{name}"'
    result = tmp_path / "result.mp4"
    result.write_bytes(response.content)
    with av.open(str(result)) as output, av.open(str(AUDIO_CLIP)) as source:
        video, source_video = output.streams.video[0], source.streams.video[0]
        assert video.codec_context.name == "h264"
        assert video.codec_context.pix_fmt == "yuv420p"
        assert (video.width, video.height) == (320, 240)
        assert video.average_rate == source_video.average_rate
        assert len(output.streams.audio) == 1
        assert sum(1 for _ in output.decode(video=0)) == 164
    # The index comes first (+faststart): a browser starts playing before the download ends.
    data = result.read_bytes()
    assert 0 < data.find(b"moov") < data.find(b"mdat")

    # Seeking: a byte range comes back as 206 with exactly those bytes.
    ranged = client.get(created["result_url"], headers={"Range": "bytes=100-199"})
    assert ranged.status_code == 206
    assert ranged.headers["content-range"] == f"bytes 100-199/{len(response.content)}"
    assert ranged.content == response.content[100:200]
    # HEAD: what a GET would answer, without the body.
    head = client.head(created["result_url"])
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-length"] == str(len(response.content))
    assert head.headers["accept-ranges"] == "bytes"
    # The upload is gone once the result exists; only the result stays, until the TTL.
    assert sorted(p.name for p in (job_stack.storage_dir / job_id).iterdir()) == ["result.mp4"]


def test_the_running_worker_is_counted(job_stack: JobStack) -> None:
    assert sample(job_stack.client.get("/metrics").text, "actionstyle_workers") >= 1


def test_a_painting_as_the_style(job_stack: JobStack) -> None:
    painting = CLIPS.parent / "styles" / "reference" / "starry_night.jpg"
    with painting.open("rb") as image:
        created = submit(
            job_stack.client, CLIPS / "hmdb51_drink.mp4", style_image=(painting.name, image)
        )
    final = wait_for_job(job_stack.client, created["job_id"], finished)
    assert final["state"] == "succeeded", final
    assert final["style"] == "painting" and final["frames_total"] == 48
    assert final["result_name"] == "hmdb51_drink.painting.mp4"


def test_a_video_sent_without_a_file_name(job_stack: JobStack) -> None:
    """What `requests` sends for bytes (the name "file"): the content alone says it is an MP4."""
    video = (CLIPS / "hmdb51_drink.mp4").read_bytes()
    response = job_stack.client.post("/stylize", files={"file": video}, data={"style": TEST_STYLE})
    assert response.status_code == 202, response.text
    final = wait_for_job(job_stack.client, response.json()["job_id"], finished)
    assert final["state"] == "succeeded", final
    assert final["frames_total"] == 48
    # httpx calls bytes "upload"; a name in any script survives into the download's name.
    assert final["result_name"] == f"upload.{TEST_STYLE}.mp4"
    named = job_stack.client.post(
        "/stylize", files={"file": ("Tänzer am Strand.mov", video)}, data={"style": TEST_STYLE}
    ).json()
    final = wait_for_job(job_stack.client, named["job_id"], finished)
    assert final["result_name"] == f"Tänzer am Strand.{TEST_STYLE}.mp4"
    result = job_stack.client.head(named["result_url"])
    assert result.headers["content-disposition"] == (
        f"inline; filename*=utf-8''T%C3%A4nzer%20am%20Strand.{TEST_STYLE}.mp4"
    )


def frames_of(video: Path) -> np.ndarray:
    """Every frame, RGB, as one float array (T, H, W, 3)."""
    with av.open(str(video)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)]).astype(
            np.float32
        )


def test_half_strength_lies_between_the_original_and_the_full_style(
    job_stack: JobStack, tmp_path: Path
) -> None:
    client, clip = job_stack.client, CLIPS / "hmdb51_drink.mp4"
    jobs = {strength: submit(client, clip, TEST_STYLE, strength) for strength in ("1", "0.5")}
    results = {}
    for strength, created in jobs.items():
        final = wait_for_job(client, created["job_id"], finished)
        assert final["state"] == "succeeded", (final, job_stack.worker_log.text[-3000:])
        assert final["strength"] == float(strength)
        results[strength] = tmp_path / f"{strength}.mp4"
        results[strength].write_bytes(client.get(created["result_url"]).content)
    original, full, half = frames_of(clip), frames_of(results["1"]), frames_of(results["0.5"])
    assert original.shape == full.shape == half.shape
    style_distance = np.abs(full - original).mean()
    assert style_distance > 20
    # The blend comes before the flow smoothing, whose weights depend on the source frames only:
    # the half-strength video is the mean of the two others, up to H.264's rounding.
    assert np.abs(half - (full + original) / 2).mean() < 0.1 * style_distance
    assert np.abs(half - original).mean() == pytest.approx(style_distance / 2, rel=0.15)


def test_cancel_a_running_job(job_stack: JobStack) -> None:
    client = job_stack.client
    job_id = submit(client, AUDIO_CLIP, SLOW_STYLE)["job_id"]
    wait_for_job(client, job_id, running_with_progress, timeout_s=60)

    response = client.delete(f"/jobs/{job_id}")
    cancelled_at = time.monotonic()
    assert response.status_code == 200
    assert response.json()["state"] == "cancelled"
    # The worker stops at its next frame and removes every file of the job, partial output too.
    folder = job_stack.storage_dir / job_id
    while folder.exists() and time.monotonic() - cancelled_at < CANCEL_WITHIN_S:
        time.sleep(0.02)
    assert not folder.exists(), sorted(p.name for p in folder.iterdir())
    status = job(client, job_id)
    assert status["state"] == "cancelled" and status["progress"] < 1
    assert client.get(f"/jobs/{job_id}/result").status_code == 409
    again = client.delete(f"/jobs/{job_id}")
    assert again.status_code == 409
    assert again.json() == {
        "detail": f"job '{job_id}' is already cancelled; "
        "only queued or running jobs can be cancelled",
        "code": "job_already_finished",
    }


def _api_with(job_stack: JobStack, **overrides: Any) -> TestClient:
    """Another API on the stack's Redis, storage and worker, with its own settings: each job
    carries its time limits to the worker, so the API's settings decide them."""
    return TestClient(create_app(job_stack.settings.model_copy(update=overrides)))


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The audio clip's pictures three times over (492 frames, 320x240): with the slow style,
    several seconds of work on any machine these tests run on."""
    frames = real_frames(AUDIO_CLIP, 164, (320, 240))
    return write_video(tmp_path_factory.mktemp("long") / "long.mp4", frames * 3)


def test_a_job_past_its_time_limit_fails_saying_so_and_keeps_nothing(
    job_stack: JobStack, long_clip: Path
) -> None:
    no_allowance = {"stylize_seconds_per_frame": 0.0, "stylize_seconds_per_megapixel": 0.0}
    with _api_with(
        job_stack, job_soft_time_limit_s=1, job_time_limit_s=61, **no_allowance
    ) as client:
        job_id = submit(client, long_clip, SLOW_STYLE)["job_id"]
        final = wait_for_job(client, job_id, finished, timeout_s=60)
    assert final["state"] == "failed"
    assert final["error"] == "the job took longer than the limit of 1 s"
    assert not list((job_stack.storage_dir / job_id).glob("*"))  # the upload is not kept


def test_a_long_video_gets_the_time_its_frames_need(job_stack: JobStack, long_clip: Path) -> None:
    # The same job, with the default limit far too short for it, is allowed a second a frame.
    with _api_with(
        job_stack, job_soft_time_limit_s=1, job_time_limit_s=61, stylize_seconds_per_frame=1.0
    ) as client:
        job_id = submit(client, long_clip, SLOW_STYLE)["job_id"]
        final = wait_for_job(client, job_id, finished, timeout_s=120)
    assert final["state"] == "succeeded", final


def test_a_held_status_answers_as_soon_as_the_job_ends(job_stack: JobStack) -> None:
    client = job_stack.client
    job_id = submit(client, AUDIO_CLIP, SLOW_STYLE)["job_id"]
    wait_for_job(client, job_id, running_with_progress, timeout_s=60)

    asked = time.monotonic()
    held = client.get(f"/jobs/{job_id}", params={"wait": 0.5})
    assert held.status_code == 200 and held.json()["state"] == "running"
    assert time.monotonic() - asked >= 0.45  # held while the job ran

    canceller = threading.Timer(0.5, lambda: client.delete(f"/jobs/{job_id}"))
    asked = time.monotonic()
    canceller.start()
    try:
        ended = client.get(f"/jobs/{job_id}", params={"wait": 20})
    finally:
        canceller.join()
    assert ended.status_code == 200 and ended.json()["state"] == "cancelled"
    assert time.monotonic() - asked < 5  # answered at the end, not after 20 s

    asked = time.monotonic()
    assert job(client, job_id)["state"] == "cancelled"
    client.get(f"/jobs/{job_id}", params={"wait": 20})
    assert time.monotonic() - asked < 2  # a finished job is answered at once
    for wait in ("-1", "31", "soon"):
        refused = client.get(f"/jobs/{job_id}", params={"wait": wait})
        assert refused.status_code == 422 and refused.json()["code"] == "invalid_parameter"


def test_cancel_a_queued_job_it_never_starts(job_stack: JobStack) -> None:
    client = job_stack.client
    blocker = submit(client, AUDIO_CLIP, SLOW_STYLE)["job_id"]
    wait_for_job(client, blocker, running_with_progress, timeout_s=60)
    queued = submit(client, AUDIO_CLIP, TEST_STYLE)["job_id"]
    assert job(client, queued)["state"] == "queued"
    result = client.get(f"/jobs/{queued}/result")
    assert result.status_code == 409 and result.json()["code"] == "job_not_finished"

    response = client.delete(f"/jobs/{queued}")
    assert response.status_code == 200 and response.json()["state"] == "cancelled"
    assert not (job_stack.storage_dir / queued).exists()
    assert client.delete(f"/jobs/{blocker}").status_code == 200

    # The worker, free again, takes the cancelled job off the queue and skips it.
    marker = f"Task actionstyle.stylize_video[{queued}] succeeded"
    deadline = time.monotonic() + 30
    while marker not in job_stack.worker_log.text and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marker in job_stack.worker_log.text
    status = job(client, queued)
    assert status["state"] == "cancelled"
    assert status["started_at"] is None and status["frames_done"] == 0


def test_a_video_that_breaks_off_fails_with_a_message(job_stack: JobStack, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.avi"
    truncated.write_bytes(AUDIO_CLIP.read_bytes()[: AUDIO_CLIP.stat().st_size // 2])
    job_id = submit(job_stack.client, truncated, TEST_STYLE)["job_id"]
    final = wait_for_job(job_stack.client, job_id, finished)
    assert final["state"] == "failed"
    assert final["error"] == (
        "the video breaks off after frame 77 of the 164 its header declares; "
        "the file is truncated or damaged"
    )
    response = job_stack.client.get(f"/jobs/{job_id}/result")
    assert response.status_code == 409
    assert response.json()["code"] == "job_has_no_result"
    assert not list((job_stack.storage_dir / job_id).glob("*"))


@pytest.mark.parametrize(
    ("path", "method", "status", "code"),
    [
        ("/jobs/" + "0" * 32, "get", 404, "job_not_found"),
        ("/jobs/" + "0" * 32 + "/result", "get", 404, "job_not_found"),
        ("/jobs/" + "0" * 32, "delete", 404, "job_not_found"),
        ("/jobs/not-a-job", "get", 422, "invalid_parameter"),
        ("/jobs/" + "A" * 32 + "/result", "get", 422, "invalid_parameter"),
        ("/jobs/../etc", "delete", 404, "not_found"),
    ],
)
def test_job_lookups_that_fail(
    job_stack: JobStack, path: str, method: str, status: int, code: str
) -> None:
    response = getattr(job_stack.client, method)(path)
    assert response.status_code == status, response.text
    assert response.json()["code"] == code


@pytest.mark.parametrize(
    ("data", "files", "code", "detail"),
    [
        (
            {"style": "nope"},
            {},
            "unknown_style",
            "unknown style 'nope'; known styles: ",
        ),
        (
            {},
            {},
            "invalid_style_choice",
            "send either the form field 'style' (a name from GET /models) or a "
            "'style_image' file with your own painting",
        ),
        (
            {"style": TEST_STYLE},
            {"style_image": ("p.png", image_bytes(".png"))},
            "invalid_style_choice",
            "send either the form field 'style' (a name from GET /models) or a "
            "'style_image' file with your own painting, not both",
        ),
        (
            {},
            {"style_image": ("p.png", b"not an image at all")},
            "invalid_style_image",
            "the style painting is not an image we can read; upload a JPEG, PNG or WebP",
        ),
    ],
    ids=["unknown-style", "no-style", "both", "bad-painting"],
)
def test_stylize_refuses_a_bad_style(
    job_stack: JobStack, data: dict, files: dict, code: str, detail: str
) -> None:
    with AUDIO_CLIP.open("rb") as video:
        response = job_stack.client.post(
            "/stylize", files={"file": (AUDIO_CLIP.name, video), **files}, data=data
        )
    assert response.status_code == 422, response.text
    assert response.json()["code"] == code
    assert response.json()["detail"].startswith(detail)


STRENGTH_RANGE = "a number above 0 and at most 1 (1: the full style, 0.5: half-way to the original)"


@pytest.mark.parametrize(
    ("strength", "detail"),
    [
        ("0", f"strength 0 would give back the video unchanged; send {STRENGTH_RANGE}"),
        ("-0.25", f"strength must be {STRENGTH_RANGE}; -0.25 is out of range"),
        ("1.5", f"strength must be {STRENGTH_RANGE}; 1.5 is out of range"),
        ("strong", f"strength must be {STRENGTH_RANGE}; 'strong' is not a number"),
    ],
    ids=["zero", "negative", "above-1", "not-a-number"],
)
def test_stylize_refuses_a_bad_strength(job_stack: JobStack, strength: str, detail: str) -> None:
    with AUDIO_CLIP.open("rb") as video:
        response = job_stack.client.post(
            "/stylize",
            files={"file": (AUDIO_CLIP.name, video)},
            data={"style": TEST_STYLE, "strength": strength},
        )
    assert response.status_code == 422, response.text
    assert response.json() == {"detail": detail, "code": "invalid_strength"}
    assert not list(job_stack.storage_dir.glob(f"*/input{AUDIO_CLIP.suffix}"))


def test_stylize_refuses_what_is_not_a_video(job_stack: JobStack) -> None:
    response = job_stack.client.post(
        "/stylize", files={"file": ("clip.mp4", image_bytes(".jpg"))}, data={"style": TEST_STYLE}
    )
    assert response.status_code == 415
    assert response.json()["detail"] == (
        "the file is a JPEG image, not a video; "
        "upload an AVI, MP4, MOV, 3GP, MPEG, MTS, WMV, WebM or MKV video"
    )


def test_stylize_without_redis_is_503_and_keeps_nothing(
    style_models_dir: Path, tmp_path: Path
) -> None:
    settings = Settings(
        models_dir=style_models_dir,
        storage_dir=tmp_path / "storage",
        temp_dir=tmp_path / "uploads",
        redis_url=f"redis://127.0.0.1:{closed_port()}/0",
        ort_intra_op_threads=1,
    )
    started = time.monotonic()
    with TestClient(create_app(settings)) as client, AUDIO_CLIP.open("rb") as video:
        response = client.post(
            "/stylize", files={"file": (AUDIO_CLIP.name, video)}, data={"style": TEST_STYLE}
        )
        assert response.status_code == 503
        assert response.json()["code"] == "queue_unavailable"
        assert response.json()["detail"].startswith("the job queue is unavailable: ")
        assert client.get("/jobs/" + "0" * 32).status_code == 503
    assert time.monotonic() - started < 15
    assert not list((tmp_path / "storage").glob("*/*"))
    assert not list((tmp_path / "uploads").glob("*"))
