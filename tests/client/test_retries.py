"""Retries, typed errors, streamed uploads and resumed downloads, on scripted transports."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from actionstyle_client import (
    Client,
    InputRejected,
    RateLimited,
    RetryPolicy,
    ServiceUnavailable,
    ServiceUnreachable,
)
from actionstyle_client.batch import FolderRun, plan_folder

JOB_ID = "0123456789abcdef0123456789abcdef"
CREATED = {"job_id": JOB_ID, "status_url": "/jobs/x", "result_url": "/jobs/x/result"}
MODELS = {"default_classifier": "m", "classifiers": [], "styles": [], "custom_style": False}

Step = Callable[[httpx.Request], httpx.Response]


class Script(httpx.BaseTransport):
    """Answers the n-th request with the n-th step; a step may raise instead."""

    def __init__(self, *steps: Step) -> None:
        self.steps, self.requests, self.bodies = list(steps), [], []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.bodies.append(b"".join(request.stream))
        return self.steps[len(self.requests) - 1](request)


def answer(status: int, **kwargs: object) -> Step:
    return lambda request: httpx.Response(status, **kwargs)


def fail(exc: type[httpx.TransportError]) -> Step:
    def step(request: httpx.Request) -> httpx.Response:
        raise exc("scripted", request=request)

    return step


def client_for(script: Script, sleeps: list[float], attempts: int = 5) -> Client:
    return Client(
        "http://service", "k", transport=script, retry=RetryPolicy(attempts), sleep=sleeps.append
    )


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    path = tmp_path / "clip.avi"
    path.write_bytes(b"RIFF video")
    return path


def test_429_waits_what_retry_after_says_then_succeeds(clip: Path) -> None:
    too_many = {"detail": "try again in 7 s", "code": "too_many_jobs"}
    script = Script(
        answer(429, json=too_many, headers={"Retry-After": "7"}), answer(202, json=CREATED)
    )
    sleeps: list[float] = []
    job = client_for(script, sleeps).stylize(clip, style="vangogh")
    assert job.id == JOB_ID
    assert sleeps == [7.0]
    # The retry sent the whole file again (reopened from the start).
    assert b"RIFF video" in script.bodies[1]


def test_an_upload_dropped_as_stalled_is_sent_again(clip: Path) -> None:
    stalled = {"detail": "no data arrived for 60 s", "code": "upload_stalled"}
    script = Script(answer(408, json=stalled), answer(202, json=CREATED))
    sleeps: list[float] = []
    assert client_for(script, sleeps).stylize(clip, style="vangogh").id == JOB_ID
    assert len(sleeps) == 1 and b"RIFF video" in script.bodies[1]


def test_an_upload_reports_the_bytes_sent_and_starts_again_on_a_retry(tmp_path: Path) -> None:
    clip = tmp_path / "clip.avi"
    clip.write_bytes(b"RIFF" + bytes(300_000))
    busy = {"detail": "the job queue is unavailable", "code": "queue_unavailable"}
    script = Script(answer(503, json=busy), answer(202, json=CREATED))
    reports: list[tuple[int, int]] = []
    job = client_for(script, []).stylize(
        clip, style="vangogh", on_upload=lambda sent, total: reports.append((sent, total))
    )
    assert job.id == JOB_ID
    assert all(total == 300_004 for _, total in reports)
    sent = [s for s, _ in reports]
    restart = next(i for i in range(1, len(sent)) if sent[i] < sent[i - 1])
    for attempt in (sent[:restart], sent[restart:]):  # each try counts from the start to the end
        assert attempt == sorted(attempt) and attempt[-1] == 300_004 and len(attempt) > 1


def test_each_retry_is_told_why_and_how_long_it_waits(clip: Path) -> None:
    full = {"detail": "200 jobs are already waiting for a worker", "code": "queue_full"}
    script = Script(
        fail(httpx.ConnectError),
        answer(503, json=full, headers={"Retry-After": "60"}),
        answer(202, json=CREATED),
    )
    told: list[tuple[str, float]] = []
    policy = RetryPolicy(5, on_retry=lambda why, wait_s: told.append((why, wait_s)))
    client = Client("http://service", transport=script, retry=policy, sleep=lambda s: None)
    client.stylize(clip, style="vangogh")
    assert told[0][0] == "http://service did not answer (ConnectError)"
    assert told[1] == ("200 jobs are already waiting for a worker (503 queue_full)", 60.0)


RUNNING = {
    "job_id": JOB_ID,
    "state": "running",
    "style": "vangogh",
    "progress": 0.5,
    "frames_done": 5,
    "frames_total": 10,
    "eta_s": 1.0,
    "error": None,
    "created_at": "2024-05-01T10:00:00+00:00",
    "started_at": "2024-05-01T10:00:00+00:00",
    "finished_at": None,
}


def test_following_a_job_outlasts_a_service_that_is_away_for_a_while() -> None:
    done = RUNNING | {"state": "succeeded", "progress": 1.0, "frames_done": 10}
    away = [fail(httpx.ConnectError)] * 6  # three status requests, each failing both its tries
    script = Script(answer(200, json=RUNNING), *away, answer(200, json=done))
    told: list[str] = []
    policy = RetryPolicy(2, on_retry=lambda why, wait_s: told.append(why))
    client = Client("http://service", transport=script, retry=policy, sleep=lambda s: None)
    seen: list[str] = []
    client.jobs.job(JOB_ID).wait(progress=lambda s: seen.append(s.state.value))
    assert seen == ["running", "succeeded"]
    assert sum(why.startswith(f"lost contact while following job {JOB_ID}") for why in told) == 3

    # Without patience, the first status request that fails after its retries ends the wait.
    script = Script(*[fail(httpx.ConnectError)] * 2)
    client = Client("http://service", transport=script, retry=policy, sleep=lambda s: None)
    with pytest.raises(ServiceUnreachable):
        client.jobs.job(JOB_ID).wait(patience_s=0)


def test_a_folder_run_outlasts_a_service_that_is_away_for_a_while(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "clip.avi").write_bytes(b"RIFF video")
    done = RUNNING | {"state": "succeeded", "progress": 1.0, "frames_done": 10}
    script = Script(
        answer(202, json=CREATED),
        fail(httpx.ConnectError),  # the status, with no retries left: the service is away
        answer(200, json=done),
        answer(200, content=b"painted"),
    )
    told: list[str] = []
    policy = RetryPolicy(1, on_retry=lambda why, wait_s: told.append(why))
    client = Client("http://service", transport=script, retry=policy, sleep=lambda s: None)
    plan = plan_folder(tmp_path / "in", tmp_path / "out")
    report = FolderRun(client, plan, style="vangogh", poll_s=0).run(log=lambda line: None)
    assert report.done == [tmp_path / "in" / "clip.avi"] and report.failed == {}
    assert (tmp_path / "out" / "clip.mp4").read_bytes() == b"painted"
    assert told == [
        "lost contact while following 1 job (http://service did not answer: "
        "ConnectError('scripted'))"
    ]


def test_503_backs_off_exponentially_then_gives_up_with_the_servers_words() -> None:
    busy = {"detail": "the job queue is unavailable", "code": "queue_unavailable"}
    script = Script(*[answer(503, json=busy)] * 4)
    sleeps: list[float] = []
    with pytest.raises(ServiceUnavailable) as raised:
        client_for(script, sleeps, attempts=4).models()
    assert (raised.value.status, raised.value.code) == (503, "queue_unavailable")
    assert raised.value.detail == "the job queue is unavailable"
    assert len(sleeps) == 3
    assert [0.25, 0.5, 1.0] <= sleeps <= [0.5, 1.0, 2.0]  # full jitter in [ceiling/2, ceiling]


def test_a_retry_after_longer_than_the_policy_allows_is_not_waited() -> None:
    script = Script(answer(429, json={"detail": "d", "code": "c"}, headers={"Retry-After": "3600"}))
    with pytest.raises(RateLimited) as raised:
        client_for(script, []).models()
    assert raised.value.retry_after_s == 3600


def test_a_dropped_connection_is_retried_for_idempotent_calls(clip: Path) -> None:
    script = Script(
        fail(httpx.RemoteProtocolError), fail(httpx.ReadError), answer(200, json=MODELS)
    )
    sleeps: list[float] = []
    assert client_for(script, sleeps).models().default_classifier == "m"
    assert len(sleeps) == 2


def test_a_dropped_stylize_is_not_sent_twice(clip: Path) -> None:
    script = Script(fail(httpx.RemoteProtocolError), answer(202, json=CREATED))
    with pytest.raises(ServiceUnreachable):
        client_for(script, []).stylize(clip, style="vangogh")
    assert len(script.requests) == 1  # the job may exist: a second POST could queue it twice


def test_a_connection_never_made_is_retried_even_for_stylize(clip: Path) -> None:
    script = Script(fail(httpx.ConnectError), answer(202, json=CREATED))
    assert client_for(script, []).stylize(clip, style="vangogh").id == JOB_ID


def test_errors_carry_the_servers_code_and_detail(clip: Path) -> None:
    problem = {
        "detail": "the file is not a video format we accept",
        "code": "unsupported_media_type",
    }
    script = Script(answer(415, json=problem))
    with pytest.raises(InputRejected) as raised:
        client_for(script, []).classify(clip)
    assert (raised.value.status, raised.value.code, raised.value.detail) == (
        415,
        "unsupported_media_type",
        problem["detail"],
    )
    assert len(script.requests) == 1


def test_an_error_without_a_problem_body_still_maps() -> None:
    script = Script(answer(502, text="Bad Gateway from the proxy"))
    with pytest.raises(ServiceUnavailable) as raised:
        client_for(script, [], attempts=1).models()
    assert (raised.value.code, raised.value.detail) == ("http_502", "Bad Gateway from the proxy")


def test_a_200_mb_upload_is_streamed_from_disk(tmp_path: Path) -> None:
    big = tmp_path / "big.mp4"
    with big.open("wb") as out:
        out.truncate(200 * 1024 * 1024)  # sparse: no disk space, reads as zeros
    received = 0

    def count(request: httpx.Request) -> httpx.Response:
        return httpx.Response(202, json=CREATED)

    class Counting(Script):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            nonlocal received
            for chunk in request.stream:
                received += len(chunk)
            return count(request)

    tracemalloc.start()
    try:
        client_for(Counting(), []).stylize(big, style="vangogh")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received > 200 * 1024 * 1024
    assert peak < 16 * 1024 * 1024, f"{peak / 2**20:.0f} MiB held at once"


def test_a_teach_upload_streams_every_clip_from_disk(tmp_path: Path) -> None:
    clips: dict[str, list[Path]] = {"a": [], "b": []}
    for i in range(6):
        path = tmp_path / f"clip{i}.mp4"
        with path.open("wb") as out:
            out.truncate(32 * 1024 * 1024)  # sparse, as above
        clips["ab"[i % 2]].append(path)
    received = 0
    created = {"job_id": JOB_ID, "status_url": "", "classifier": "c", "classifier_url": ""}

    class Counting(Script):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            nonlocal received
            for chunk in request.stream:
                received += len(chunk)
            return httpx.Response(202, json=created)

    tracemalloc.start()
    try:
        job = client_for(Counting(), []).teach("c", clips=clips)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (job.id, job.name) == (JOB_ID, "c")
    assert received > 6 * 32 * 1024 * 1024  # all six clips went, in one body
    assert peak < 16 * 1024 * 1024, f"{peak / 2**20:.0f} MiB held at once"


class BreaksOff(httpx.SyncByteStream):
    """A body that stops with a dropped connection after `good` bytes."""

    def __init__(self, good: bytes) -> None:
        self.good = good

    def __iter__(self) -> Iterator[bytes]:
        yield self.good
        raise httpx.RemoteProtocolError("peer closed connection")


def test_a_broken_download_resumes_with_a_range(tmp_path: Path) -> None:
    video = bytes(range(256)) * 100
    script = Script(
        lambda request: httpx.Response(200, stream=BreaksOff(video[:1000])),
        lambda request: httpx.Response(206, content=video[1000:]),
    )
    dest = tmp_path / "out.mp4"
    assert client_for(script, []).jobs.job(JOB_ID).download(dest) == dest
    assert dest.read_bytes() == video
    assert script.requests[1].headers["range"] == "bytes=1000-"
    assert not (tmp_path / "out.mp4.part").exists()
