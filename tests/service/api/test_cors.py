"""Pages on other origins calling the API from a browser: those ACTIONSTYLE_CORS_ORIGINS names."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from service.app import create_app
from tests.service.conftest import SettingsFactory

APP = "https://app.example"


def preflight(client: TestClient, origin: str):
    return client.options(
        "/stylize",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-api-key, content-type",
        },
    )


def test_a_named_origin_may_call_the_api_and_read_what_it_needs(
    make_settings: SettingsFactory, style_models_dir: Path
) -> None:
    settings = make_settings(
        models_dir=style_models_dir, cors_origins=f"{APP}, https://other.example", api_keys="k"
    )
    with TestClient(create_app(settings)) as client:
        allowed = preflight(client, APP)  # answered before any API key is asked for
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == APP
        assert "POST" in allowed.headers["access-control-allow-methods"]
        assert "x-api-key" in allowed.headers["access-control-allow-headers"].lower()

        models = client.get("/models", headers={"Origin": APP, "X-API-Key": "k"})
        assert models.status_code == 200
        assert models.headers["access-control-allow-origin"] == APP
        exposed = models.headers["access-control-expose-headers"].lower()
        assert {"location", "retry-after", "x-request-id"} <= set(exposed.split(", "))
        # An error answer carries the headers too, so the page can read why.
        refused = client.get("/models", headers={"Origin": APP})
        assert refused.status_code == 401
        assert refused.headers["access-control-allow-origin"] == APP

        stranger = client.get(
            "/models", headers={"Origin": "https://evil.example", "X-API-Key": "k"}
        )
        assert "access-control-allow-origin" not in stranger.headers
        assert preflight(client, "https://evil.example").status_code == 400


def test_without_origins_no_other_page_may_call_it(
    make_settings: SettingsFactory, style_models_dir: Path
) -> None:
    with TestClient(create_app(make_settings(models_dir=style_models_dir))) as client:
        answer = client.get("/models", headers={"Origin": APP})
        assert answer.status_code == 200
        assert "access-control-allow-origin" not in answer.headers
        assert preflight(client, APP).status_code == 405
