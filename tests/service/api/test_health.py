"""GET /healthz and GET /readyz, against a real redis-server and a closed port."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from service.app import create_app
from tests.service.conftest import SettingsFactory


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_when_models_load_and_redis_answers(
    make_settings: SettingsFactory, redis_url: str
) -> None:
    with TestClient(create_app(make_settings(redis_url=redis_url))) as client:
        response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"models": "ok", "redis": "ok"}}


def test_not_ready_when_redis_is_down(make_settings: SettingsFactory) -> None:
    settings = make_settings()  # its redis_url points at a closed port
    port = settings.redis_url.rsplit(":", 1)[1].split("/")[0]
    with TestClient(create_app(settings)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["models"] == "ok"
    assert body["checks"]["redis"] == (
        f"redis does not answer: Error 111 connecting to 127.0.0.1:{port}. Connection refused."
    )


def test_not_ready_without_models(
    make_settings: SettingsFactory, redis_url: str, tmp_path: Path
) -> None:
    settings = make_settings(models_dir=tmp_path, redis_url=redis_url)
    with TestClient(create_app(settings)) as client:
        health, ready = client.get("/healthz"), client.get("/readyz")
    assert health.status_code == 200
    assert ready.status_code == 503
    assert ready.json()["checks"] == {
        "models": f"no models are installed: {tmp_path / 'manifest.json'} does not exist; "
        "export a model from training first",
        "redis": "ok",
    }
