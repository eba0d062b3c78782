"""The environment docker compose would give a service, read from docker-compose.yml itself.

env = compose_environment("worker", {"REDIS_PASSWORD": "secret"})
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.utils.data import REPO_ROOT

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
_VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)(?:(:-|:\?)([^}]*))?\}")


def compose_file() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def interpolate(text: str, variables: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} against `variables` (a .env)."""

    def value(match: re.Match[str]) -> str:
        name, kind, rest = match.groups()
        if variables.get(name):
            return variables[name]
        if kind == ":?":
            raise KeyError(f"{name} is required: {rest}")
        return rest if kind == ":-" else ""

    return _VARIABLE.sub(value, text)


def compose_environment(service: str, variables: dict[str, str]) -> dict[str, str]:
    """The service's `environment:` with every variable resolved as compose would."""
    environment = compose_file()["services"][service]["environment"]
    return {name: interpolate(str(raw), variables) for name, raw in environment.items()}


def compose_command(service: str, variables: dict[str, str]) -> list[str]:
    command = compose_file()["services"][service]["command"]
    return [interpolate(str(part), variables) for part in command]


def env_example() -> dict[str, str]:
    """The documented defaults in .env.example."""
    text = (REPO_ROOT / ".env.example").read_text()
    return dict(re.findall(r"^([A-Z0-9_]+)=(.*)$", text, re.MULTILINE))
