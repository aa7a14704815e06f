"""schemathesis against the running panel (`mailctl web` on 127.0.0.1, a demo database): every
operation of the OpenAPI document fuzzed with a valid admin key; no 5xx, and every answer
(status, content type, headers, body) valid against the document.

The server and its data are made once for the module (a server per operation would cost more
than the fuzzing); examples per operation are capped to keep the run to a few minutes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from tests.support.env import PG_URL, _reset_postgres
from tests.support.procs import wait_for

EXAMPLES = 20  # per operation: 37 operations, about a minute in all


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILCTL_")}
    if PG_URL:
        _reset_postgres(PG_URL)
    (data / "mailctl.toml").write_text("")
    env.update(
        MAILCTL_CONFIG=str(data / "mailctl.toml"),
        MAILCTL_GENERAL_DATA_DIR=str(data),
        MAILCTL_DATABASE_URL=PG_URL or f"sqlite:///{data / 'mailctl.db'}",
        MAILCTL_SCHEDULER_TIMEZONE="Europe/Berlin",
        MAILCTL_API_RATE_LIMIT="1000000",
        NO_COLOR="1",
        PYTHONUNBUFFERED="1",
    )
    return env


def _mailctl(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "mailctl", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(base URL, admin key) of a panel serving the demo data."""
    data = tmp_path_factory.mktemp("fuzz")
    env = _env(data)
    _mailctl(env, "demo")
    key = _mailctl(env, "--as", "admin@demo.example", "apikey", "add", "--name", "fuzz").strip()
    port = _free_port()
    log = (data / "web.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mailctl", "web", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            assert proc.poll() is None, (data / "web.log").read_text()
            return False

    wait_for(up, timeout=60, what="mailctl web")
    yield base, key
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


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
