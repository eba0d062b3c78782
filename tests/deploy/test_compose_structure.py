"""No Docker engine runs here: check the compose file and the Dockerfile say what we deploy."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.utils.data import REPO_ROOT

COMPOSE = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
DOCKERFILE = (REPO_ROOT / "Dockerfile").read_text()
ENV_EXAMPLE = (REPO_ROOT / ".env.example").read_text()


def test_compose_has_no_obsolete_version_key_and_the_four_services() -> None:
    assert "version" not in COMPOSE
    assert set(COMPOSE["services"]) == {"redis", "api", "worker", "flower"}
    assert COMPOSE["services"]["flower"]["profiles"] == ["monitoring"]


def test_redis_is_persistent_never_evicts_and_is_health_checked() -> None:
    redis = COMPOSE["services"]["redis"]
    assert redis["image"].startswith("redis:7")
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command
    assert "--maxmemory-policy noeviction" in command
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert any(v.startswith("redis-data:") for v in redis["volumes"])


@pytest.mark.parametrize("name", ["api", "worker"])
def test_app_services_wait_for_healthy_redis_and_share_job_storage(name: str) -> None:
    service = COMPOSE["services"][name]
    assert service["depends_on"]["redis"] == {"condition": "service_healthy"}
    assert "job-storage:/data/storage" in service["volumes"]
    assert service["environment"]["ACTIONSTYLE_STORAGE_DIR"] == "/data/storage"
    assert "healthcheck" in service
    assert "ports" not in service or name == "api"  # workers scale: no fixed host port


def test_api_health_check_probes_healthz_and_worker_runs_celery() -> None:
    assert "/healthz" in " ".join(COMPOSE["services"]["api"]["healthcheck"]["test"])
    assert COMPOSE["services"]["worker"]["command"][:3] == [
        "celery",
        "-A",
        "service.worker",
    ]
    assert set(COMPOSE["volumes"]) == {"redis-data", "job-storage"}


def test_every_variable_is_documented_and_required_ones_fail_loudly() -> None:
    text = (REPO_ROOT / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", text))
    documented = set(re.findall(r"^([A-Z0-9_]+)=", ENV_EXAMPLE, re.MULTILINE))
    assert used <= documented, used - documented
    assert "${REDIS_PASSWORD:?" in text


def test_dockerfile_is_multi_stage_slim_non_root_with_models_and_healthcheck() -> None:
    stages = re.findall(r"^FROM (\S+)", DOCKERFILE, re.MULTILINE)
    assert len(stages) >= 2 and all("slim" in s for s in stages)
    assert re.search(r"^USER (?!root)\w+", DOCKERFILE, re.MULTILINE)
    assert "COPY exported_models" in DOCKERFILE
    assert "HEALTHCHECK" in DOCKERFILE
    # the service's own dependencies only: no training code, no extras (torch is in `training`)
    assert "COPY training" not in DOCKERFILE and "pip install ." in DOCKERFILE
    assert ".[" not in DOCKERFILE
    lines = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    ignored = [line for line in lines if line and not line.startswith("#")]
    assert ignored[0] == "*" and "!service/" in ignored and "!exported_models/" in ignored
