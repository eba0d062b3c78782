"""The Python client against the real service: classify, stylize, teach, jobs, errors, 429."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis
from actionstyle_client import (
    ClassifyResult,
    Client,
    Conflict,
    InputRejected,
    JobState,
    JobStatus,
    NotFound,
    RateLimited,
    RetryPolicy,
    Unauthorized,
)

from tests.client.conftest import JOBS_PER_MINUTE, LiveService, not_at_a_minute_boundary
from tests.utils.styles import TEST_STYLE
from tests.utils.teach import YOYO_TEST_CLIP


def test_classify_a_clip_whole_and_by_windows(live_service: LiveService, yoyo_clip: Path) -> None:
    with Client(live_service.url, "python-key") as client:
        result = client.classify(yoyo_clip, top_k=3, segments=True)
    assert isinstance(result, ClassifyResult)
    assert len(result.predictions) == 3
    assert result.video.frames == 187
    assert result.segments and result.segments[0].start_s == 0.0
    assert result.top_label in {p.label for p in result.predictions} | {"unknown"}


def test_models_lists_classifiers_and_styles(live_service: LiveService) -> None:
    with Client(live_service.url, "python-key") as client:
        info = client.models()
    assert info.default_classifier in {c.name for c in info.classifiers}
    assert TEST_STYLE in {s.name for s in info.styles}


def test_stylize_wait_with_progress_and_download(
    live_service: LiveService, tiny_clips: list[Path], tmp_path: Path
) -> None:
    seen: list[JobStatus] = []
    with Client(live_service.url, "python-key") as client:
        job = client.stylize(tiny_clips[0], style=TEST_STYLE, strength=0.5)
        job.wait(progress=seen.append, poll_s=0.1, timeout_s=120)
        path = job.download(tmp_path / "out.mp4")
    assert seen[-1].state == JobState.SUCCEEDED
    assert (seen[-1].progress, seen[-1].frames_done, seen[-1].frames_total) == (1.0, 25, 25)
    assert seen[-1].strength == 0.5
    assert path.read_bytes()[4:8] == b"ftyp"


def test_wait_returns_when_the_job_ends_not_at_the_next_poll(
    live_service: LiveService, tiny_clips: list[Path]
) -> None:
    with Client(live_service.url, "python-key") as client:
        job = client.stylize(tiny_clips[0], style=TEST_STYLE)
        started = time.monotonic()
        job.wait(poll_s=20, timeout_s=120)  # the service holds each request until the end
        assert time.monotonic() - started < 15
        assert job.status().state == JobState.SUCCEEDED


def test_teach_a_classifier_classify_with_it_and_delete_it(
    live_service: LiveService, training_set: dict[str, list[Path]], tmp_path: Path
) -> None:
    seen: list[JobStatus] = []
    with Client(live_service.url, "teach-key") as client:
        job = client.teach("yoyo-or-punch", clips=training_set)
        job.wait(progress=seen.append, poll_s=0.2, timeout_s=180)
        entry = job.classifier()
        result = client.classify(YOYO_TEST_CLIP, model="yoyo-or-punch")
        with pytest.raises(Conflict) as no_video:
            job.download(tmp_path / "out.mp4")
        deleted = client.classifiers.delete("yoyo-or-punch")
        with pytest.raises(NotFound) as gone:
            client.classifiers.get("yoyo-or-punch")
    last = seen[-1]
    assert (last.state, last.kind, last.classifier) == (JobState.SUCCEEDED, "teach", job.name)
    assert (last.frames_done, last.frames_total) == (6, 7)  # each clip, then the training
    assert (entry.name, entry.family) == ("yoyo-or-punch", "custom")
    assert entry.labels == ["punch", "yoyo"]
    assert entry.clips_per_label == {"punch": 3, "yoyo": 3} and entry.cv_folds == 3
    assert entry.cross_validated_top1 is not None and 0.0 <= entry.cross_validated_top1 <= 1.0
    assert (result.model, result.predictions[0].label) == ("yoyo-or-punch", "yoyo")
    assert no_video.value.code == "result_is_classifier"
    assert "GET /classifiers/yoyo-or-punch" in no_video.value.detail
    assert not (tmp_path / "out.mp4").exists()
    assert deleted == entry
    assert (gone.value.status, gone.value.code) == (404, "classifier_not_found")


def test_errors_are_typed_with_the_servers_code(
    live_service: LiveService, tmp_path: Path, yoyo_clip: Path
) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all\n" * 50)
    with Client(live_service.url, "python-key") as client:
        with pytest.raises(InputRejected) as refused:
            client.classify(text)
        with pytest.raises(NotFound) as missing:
            client.jobs.get("0" * 32)
    assert (refused.value.status, refused.value.code) == (415, "unsupported_media_type")
    assert (missing.value.status, missing.value.code) == (404, "job_not_found")
    with Client(live_service.url, "nobody's-key") as stranger, pytest.raises(Unauthorized) as no:
        stranger.models()
    assert no.value.code == "api_key_required"
    assert no.value.detail == "the X-API-Key header does not hold a valid API key"


def test_429_is_retried_after_the_servers_retry_after(
    live_service: LiveService, tiny_clips: list[Path]
) -> None:
    not_at_a_minute_boundary()
    store = redis.Redis.from_url(live_service.redis_url)
    waits: list[float] = []

    def next_minute(seconds: float) -> None:
        """Stands in for waiting out the window: the quota's counters go, as at the minute."""
        waits.append(seconds)
        for key in store.scan_iter("actionstyle:rate:stylize:*"):
            store.delete(key)

    with Client(live_service.url, "quota-key", sleep=next_minute) as client:
        jobs = [client.stylize(tiny_clips[0], style=TEST_STYLE) for _ in range(JOBS_PER_MINUTE)]
        assert waits == []
        jobs.append(client.stylize(tiny_clips[0], style=TEST_STYLE))  # 429, then accepted
        for job in jobs:
            job.cancel()  # queued ones never start: the worker stays free for the other tests
    assert len(waits) == 1
    assert waits[0] == int(waits[0]) and 1 <= waits[0] <= 60  # Retry-After, not a backoff


def test_without_retries_a_429_is_raised(live_service: LiveService, tiny_clips: list[Path]) -> None:
    not_at_a_minute_boundary()
    with Client(live_service.url, "quota-key", retry=RetryPolicy(attempts=1)) as client:
        jobs = []
        with pytest.raises(RateLimited) as raised:
            for _ in range(JOBS_PER_MINUTE + 1):
                jobs.append(client.stylize(tiny_clips[0], style=TEST_STYLE))
        for job in jobs:
            job.cancel()
    assert raised.value.code == "too_many_jobs"
    assert 1 <= (raised.value.retry_after_s or 0) <= 60
