"""schemathesis against the committed openapi.yaml, sent to the API on loopback.

Every operation gets a bounded number of generated requests (valid and invalid); none may get a
server error, and every response must match the schema: status code, headers, content type, body.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.utils.data import REPO_ROOT
from tests.utils.processes import api_env, running_api

schema = schemathesis.openapi.from_path(REPO_ROOT / "openapi.yaml")

MAX_EXAMPLES = 15
# Per generated request; generous, as the CI box is shared, but a hang still fails.
DEADLINE_MS = 10_000
API_KEY = "contract-test-key"
# The schema cannot say "the file must be a video", so a schema-valid upload of any bytes is
# rightly refused (415/422): that one check does not apply here; every other one does.
EXCLUDED = [schemathesis.checks.positive_data_acceptance]


@pytest.fixture(scope="module")
def api_url(
    style_models_dir: Path, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The API with a Redis db no worker reads (jobs stay queued) and API keys switched on."""
    root = tmp_path_factory.mktemp("contract")
    env = api_env(style_models_dir, root, redis_url.rsplit("/", 1)[0] + "/8") | {
        "ACTIONSTYLE_MAX_UPLOAD_BYTES": str(4 * 2**20),
        "ACTIONSTYLE_API_KEYS": API_KEY,
    }
    with running_api(env) as url:
        yield url


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=DEADLINE_MS,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_server_error_and_responses_match_the_schema(case, api_url: str) -> None:
    case.call_and_validate(
        base_url=api_url, headers={"X-API-Key": API_KEY}, excluded_checks=EXCLUDED, timeout=30
    )
