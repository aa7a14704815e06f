"""`mailctl smtp test` and `mailctl smtp list`, through pipes and on a terminal."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.faultserver import FaultServer
from tests.support.relay import Relay
from tests.support.smtp import free_port
from tests.support.terminal import run_on_pty


@pytest.fixture
def auth_server() -> Iterator[FaultServer]:
    server = FaultServer("ok").start()  # AUTH PLAIN/LOGIN as user / pass
    try:
        yield server
    finally:
        server.stop()


def _config(tmp_path: Path, monkeypatch, *tables: str) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "smtp.toml"
    config.write_text(
        "[delivery]\nattempt_deadline_seconds = 3\n[smtp]\ntimeout = 1\n"
        + "".join(f"\n[[smtp.servers]]\n{t}" for t in tables)
    )
    monkeypatch.setenv("MAILCTL_CONFIG", str(config))


def test_smtp_test_says_what_the_server_offers_and_logs_in(
    bare_cli, auth_server: FaultServer, tmp_path, monkeypatch
) -> None:
    _config(
        tmp_path,
        monkeypatch,
        f'name = "relay"\nhost = "127.0.0.1"\nport = {auth_server.port}\n'
        'username = "user"\npassword = "pass"\n',
    )
    result = bare_cli("smtp", "test", "relay")
    assert result.exit_code == 0, result.output
    assert "relay (127.0.0.1:" in result.stderr and "ready to send" in result.stderr
    assert "pipelining  yes" in result.stdout
    assert "size        10,485,760 bytes" in result.stdout
    assert "auth        PLAIN LOGIN" in result.stdout
    assert "login       ok as user" in result.stdout
    assert "tls         none" in result.stdout
    data = json.loads(bare_cli("smtp", "test", "--json").stdout)
    assert data["auth"] == ["PLAIN", "LOGIN"] and data["size"] == 10485760


@pytest.mark.parametrize(
    ("problem", "expected"),
    [
        ("password", "relay (127.0.0.1:{port}): the mail server rejected the login: 535"),
        ("dead", "relay (127.0.0.1:{port}): connection refused by 127.0.0.1:{port}"),
        ("name", "no SMTP server called 'nope' (configured: relay)"),
    ],
)
def test_smtp_test_fails_with_one_line(
    bare_cli, auth_server: FaultServer, tmp_path, monkeypatch, problem: str, expected: str
) -> None:
    port = free_port() if problem == "dead" else auth_server.port
    password = "wrong" if problem == "password" else "pass"
    _config(
        tmp_path,
        monkeypatch,
        f'name = "relay"\nhost = "127.0.0.1"\nport = {port}\n'
        f'username = "user"\npassword = "{password}"\n',
    )
    result = bare_cli("smtp", "test", *(["nope"] if problem == "name" else []))
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output
    assert lines[0].startswith("error: " + expected.format(port=port)), lines


def test_smtp_list_shows_every_server_with_limits_and_state(
    cli, engine, tmp_path, monkeypatch
) -> None:
    from mailctl.config import load_settings
    from mailctl.schedule import Clock
    from mailctl.services.delivery import run_pass

    dead = free_port()
    with Relay() as relay:
        _config(
            tmp_path,
            monkeypatch,
            f'name = "main"\nhost = "127.0.0.1"\nport = {relay.port}\n'
            "rate_per_second = 50\nrate_per_day = 1000\nweight = 2\n",
            f'name = "spare"\nhost = "127.0.0.1"\nport = {dead}\npriority = 0\n',
        )
        monkeypatch.setenv("MAILCTL_DELIVERY_TRANSPORT", "smtp")
        for i in range(6):
            added_client = cli("client", "add", f"l{i}@example.com")
            assert added_client.exit_code == 0, added_client.output
        assert cli("message", "add", "--subject", "Hi", "--body", "Hello").exit_code == 0
        added = cli("mailing", "add", "--message", "1", "--all-clients", "--start", "+1h",
                    "--every", "once")  # fmt: skip
        assert added.exit_code == 0, added.output
        settings = load_settings()
        cli("mailing", "send", added.stdout.strip(), "--quiet")
        run_pass(engine=engine, settings=settings, clock=Clock.from_settings(settings), worker="x")
    assert len(relay.rcpts()) == 6

    result = cli("smtp", "list", "--json")
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert list(rows) == ["main", "spare"]
    main, spare = rows["main"], rows["spare"]
    assert main["limits"] == "50/s, 1000/day" and main["weight"] == 2
    assert main["used"] == f"{len(relay.rcpts())}/1000 this day"
    assert spare["health"].startswith("out of rotation for 30s: connect: connection refused")
    assert spare["limits"] == "none" and spare["connections"] == 4

    piped = cli("smtp", "list")
    assert piped.stdout.splitlines()[0].split("\t")[:3] == ["name", "address", "security"]


def test_smtp_list_on_a_terminal_draws_a_table(bare_cli, tmp_path, monkeypatch) -> None:
    _config(tmp_path, monkeypatch, 'name = "only"\nhost = "127.0.0.1"\nport = 2525\n')
    code, text = run_on_pty(["smtp", "list"])
    assert code == 0, text
    assert "shared state not shown: " in text  # nothing initialised here
    assert "only" in text and "127.0.0.1:2525" in text
    assert "\t" not in text  # a Rich table, not the tab-separated lines of a pipe
