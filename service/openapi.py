"""Print the app's OpenAPI document as YAML; the committed openapi.yaml is its output.

python -m service.openapi > openapi.yaml      (what `make openapi` runs)
"""

from __future__ import annotations

import sys

import yaml
from fastapi import FastAPI

from service.app import create_app


def render_openapi(app: FastAPI) -> str:
    return yaml.safe_dump(app.openapi(), sort_keys=False, allow_unicode=True, width=100)


def main() -> None:
    sys.stdout.write(render_openapi(create_app()))


if __name__ == "__main__":
    main()
