"""schemathesis against the running panel (`mailctl web` on 127.0.0.1, a demo database): every
operation of the OpenAPI document fuzzed with a valid admin key; no 5xx, and every answer
(status, content type, headers, body) valid against the document.

The server and its data are made once for the module (a server per operation would cost more
than the fuzzing); examples per operation are capped to keep the run to a few minutes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from tests.api import live

EXAMPLES = 20  # per operation: 37 operations, about a minute in all


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(base URL, admin key) of a panel serving the demo data."""
    data = tmp_path_factory.mktemp("fuzz")
    env = live.environment(data, MAILCTL_API_RATE_LIMIT="1000000")
    live.mailctl(env, "demo")
    key = live.mailctl(env, "--as", "admin@demo.example", "apikey", "add", "--name", "fuzz")
    with live.panel(env, data) as base:
        yield base, key.strip()


@pytest.fixture
def api_schema(server: tuple[str, str]):  # type: ignore[no-untyped-def]
    base, _ = server
    return schemathesis.openapi.from_url(f"{base}/api/v1/openapi.json", config=CONFIG)


# Valid input may still be refused by a rule the schema cannot state (an address that does
# not parse, a time in the past, another user's id): a documented 4xx, not a fault. Invalid
# input may also be too large for the body cap (413) before it is even read.
CONFIG = SchemathesisConfig.from_str(
    """
[checks.positive_data_acceptance]
enabled = false
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "409", "413", "415", "422", "429"]
"""
)
schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation(case, server) -> None:  # type: ignore[no-untyped-def]
    base, key = server
    case.call_and_validate(base_url=f"{base}/api/v1", headers={"Authorization": f"Bearer {key}"})
