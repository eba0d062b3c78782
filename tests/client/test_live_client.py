"""The Python client against the real service: classify, stylize and follow a job, errors, 429."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from actionstyle_client import (
    ClassifyResult,
    Client,
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
