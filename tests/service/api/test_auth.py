"""Optional API keys: 401 without one, jobs private to their key, a per-key stylize quota."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.service.conftest import SettingsFactory
from tests.utils.data import AUDIO_CLIP
from tests.utils.jobs import submit_job
from tests.utils.styles import TEST_STYLE

ALPHA, BETA = {"X-API-Key": "alpha-key"}, {"X-API-Key": "beta-key"}
JOBS_PER_MINUTE = 2


@pytest.fixture
def keyed_settings(
    make_settings: SettingsFactory, style_models_dir: Path, redis_url: str, tmp_path: Path
) -> Settings:
    # Database 3: no worker of the other tests consumes these jobs; they stay queued.
    url = redis_url.rsplit("/", 1)[0] + "/3"
    redis.Redis.from_url(url).flushdb()
    return make_settings(
        models_dir=style_models_dir,
        redis_url=url,
        storage_dir=tmp_path / "storage",
        api_keys=" alpha-key, beta-key ,",
        stylize_jobs_per_minute=JOBS_PER_MINUTE,
    )


@pytest.fixture
def keyed(keyed_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(keyed_settings)) as client:
        yield client


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "this server needs an API key: send it in the X-API-Key header"),
        ({"X-API-Key": "gamma-key"}, "the X-API-Key header does not hold a valid API key"),
        ({"X-API-Key": ""}, "this server needs an API key: send it in the X-API-Key header"),
    ],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/models"),
        ("post", "/classify"),
        ("post", "/stylize"),
        ("post", "/stylize/preview"),
        ("get", "/jobs/" + "0" * 32),
        ("get", "/jobs/" + "0" * 32 + "/result"),
        ("delete", "/jobs/" + "0" * 32),
    ],
)
def test_api_routes_need_a_key(
    keyed: TestClient, method: str, path: str, headers: dict, detail: str
) -> None:
    response = getattr(keyed, method)(path, headers=headers)
    assert response.status_code == 401
    assert response.json() == {"detail": detail, "code": "api_key_required"}


@pytest.mark.parametrize("path", ["/", "/static/app.js", "/healthz", "/readyz", "/metrics"])
def test_the_page_health_and_metrics_need_none(keyed: TestClient, path: str) -> None:
    assert keyed.get(path).status_code == 200


def test_a_valid_key_opens_the_api(keyed: TestClient) -> None:
    assert keyed.get("/models", headers=ALPHA).status_code == 200
    assert keyed.get("/models", headers=BETA).status_code == 200


def test_a_job_is_visible_only_to_its_key(keyed: TestClient) -> None:
    job_id = submit_job(keyed, AUDIO_CLIP, TEST_STYLE, headers=ALPHA)["job_id"]
    assert keyed.get(f"/jobs/{job_id}", headers=ALPHA).json()["state"] == "queued"
    unknown = {
        "detail": f"no job '{job_id}': the id is unknown or the job has expired",
        "code": "job_not_found",
    }
    for method, path in [
        ("get", f"/jobs/{job_id}"),
        ("get", f"/jobs/{job_id}/result"),
        ("delete", f"/jobs/{job_id}"),
    ]:
        response = getattr(keyed, method)(path, headers=BETA)
        assert response.status_code == 404, (method, path)
        assert response.json() == unknown  # the same answer as for an id nobody has
    # The other key's cancel left it alone; its own key can cancel it.
    assert keyed.get(f"/jobs/{job_id}", headers=ALPHA).json()["state"] == "queued"
    assert keyed.delete(f"/jobs/{job_id}", headers=ALPHA).json()["state"] == "cancelled"


def _not_at_a_minute_boundary() -> None:
    """The quota is a fixed one-minute window: do not start a test in its last seconds."""
    left = 60 - time.time() % 60
    if left < 5:
        time.sleep(left + 0.1)


def test_each_key_has_its_own_quota_shared_by_every_api_process(
    keyed_settings: Settings,
) -> None:
    _not_at_a_minute_boundary()
    with (
        TestClient(create_app(keyed_settings)) as first,
        TestClient(create_app(keyed_settings)) as second,
    ):
        submit_job(first, AUDIO_CLIP, TEST_STYLE, headers=ALPHA)
        submit_job(second, AUDIO_CLIP, TEST_STYLE, headers=ALPHA)
        with AUDIO_CLIP.open("rb") as video:
            refused = first.post(
                "/stylize",
                files={"file": (AUDIO_CLIP.name, video)},
                data={"style": TEST_STYLE},
                headers=ALPHA,
            )
        assert refused.status_code == 429
        retry_after = int(refused.headers["retry-after"])
        assert 1 <= retry_after <= 60
        assert refused.json() == {
            "detail": f"this key may create {JOBS_PER_MINUTE} stylize jobs per minute; "
            f"try again in {retry_after} s",
            "code": "too_many_jobs",
        }
        # Another key is not held back by the first one's jobs; status reads are not counted.
        submit_job(second, AUDIO_CLIP, TEST_STYLE, headers=BETA)
        assert first.get("/models", headers=ALPHA).status_code == 200
