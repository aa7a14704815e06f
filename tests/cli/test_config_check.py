"""`mailctl config check`: every problem of the effective settings, one line each, exit 1 when
one is serious; and the senders' warning about links nobody can open."""

from __future__ import annotations

import json
import logging
import os
import socket
from pathlib import Path

import pytest

from tests.support.cli import ok

PG_URL = os.environ.get("MAILCTL_TEST_DATABASE_URL", "")


def _lines(result) -> list[str]:  # type: ignore[no-untyped-def]
    assert "Traceback" not in result.stderr + result.stdout
    return result.stdout.strip().splitlines()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def real_mail(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    def configure(port: int, **extra: object) -> None:
        env = {
            "DELIVERY_TRANSPORT": "smtp",
            "DELIVERY_FROM_ADDRESS": "news@example.org",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": port,
            "SMTP_TIMEOUT": 2,
            "WEB_BASE_URL": "https://mail.example.org",
            "WEB_SECURE_COOKIES": "true",
            "WEB_SECRET_KEY": "a-shared-secret-key-for-every-host",
        } | {k.upper(): v for k, v in extra.items()}
        for key, value in env.items():
            monkeypatch.setenv(f"MAILCTL_{key}", str(value))

    return configure


@pytest.mark.skipif(bool(PG_URL), reason="a SQLite file that does not exist yet")
def test_a_fresh_home_is_told_to_run_init_and_nothing_is_created(
    bare_cli, mailctl_env: Path
) -> None:
    result = bare_cli("config", "check")
    assert result.exit_code == 1
    lines = _lines(result)
    assert any(
        line.startswith("serious: the database") and "run `mailctl init`" in line for line in lines
    ), lines
    assert not mailctl_env.exists()  # no data dir, no empty database file


def test_the_default_outbox_setup_has_only_warnings(cli, monkeypatch) -> None:
    # (On PostgreSQL a shared secret key is required: that case has a test of its own.)
    monkeypatch.setenv("MAILCTL_WEB_SECRET_KEY", "one-key-for-every-host")
    result = ok(cli("config", "check"))
    lines = _lines(result)
    assert lines and all(line.startswith("warning: ") for line in lines), lines
    assert any("web.base_url is not set" in line for line in lines)
    assert any("delivery.from_address is the default" in line for line in lines)


def test_real_mail_without_base_url_or_sender_is_serious(cli, real_mail, monkeypatch) -> None:
    from aiosmtpd.controller import Controller

    class Accept:
        async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
            return "250 OK"

    port = _free_port()
    controller = Controller(Accept(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        real_mail(port)
        clean = cli("config", "check")
        assert clean.exit_code == 0, clean.stdout
        assert _lines(clean) == []
        assert "no problems found" in clean.stderr

        monkeypatch.delenv("MAILCTL_WEB_BASE_URL")
        monkeypatch.delenv("MAILCTL_DELIVERY_FROM_ADDRESS")
        result = cli("config", "check")
        findings = json.loads(cli("config", "check", "--json").stdout)
    finally:
        controller.stop()
    assert result.exit_code == 1
    lines = _lines(result)
    assert len(lines) == 2, lines
    assert lines[0].startswith("serious: web.base_url is not set")
    assert "http://127.0.0.1:8000" in lines[0]
    assert lines[1].startswith("serious: delivery.from_address is the default")
    assert [(f["level"], f["key"]) for f in findings] == [
        ("serious", "web.base_url"),
        ("serious", "delivery.from_address"),
    ]


def test_an_unreachable_or_refusing_mail_server_is_serious(cli, real_mail) -> None:
    from tests.support.faultserver import FaultServer

    real_mail(_free_port())
    lines = _lines(cli("config", "check"))
    assert len(lines) == 1 and lines[0].startswith("serious: smtp 127.0.0.1:")
    assert "connection refused" in lines[0]
    assert ok(cli("config", "check", "--offline")).stdout == ""

    with FaultServer("535_auth") as server:
        real_mail(server.port, smtp_username="user", smtp_password="wrong")
        result = cli("config", "check")
        assert server.received_rcpts() == []  # a probe sends no mail
    assert result.exit_code == 1
    lines = _lines(result)
    assert len(lines) == 1
    assert "the mail server rejected the login: 535" in lines[0]


def test_smtp_settings_that_look_wrong_are_warned_about(cli, real_mail) -> None:
    real_mail(465, smtp_host="smtp.example.com", smtp_security="starttls")
    lines = _lines(cli("config", "check", "--offline"))
    assert lines == ["warning: smtp.port 465 usually means smtp.security = ssl, not starttls"]
    real_mail(25, smtp_host="smtp.example.com", smtp_security="none", smtp_username="u")
    lines = _lines(cli("config", "check", "--offline"))
    assert len(lines) == 1 and "the password crosses the network" in lines[0]


def test_postgresql_without_a_shared_secret_key_is_serious(bare_cli, monkeypatch) -> None:
    monkeypatch.setenv(
        "MAILCTL_DATABASE_URL", PG_URL or "postgresql+psycopg://mailctl:x@127.0.0.1:1/none"
    )
    result = bare_cli("config", "check")
    assert result.exit_code == 1
    lines = _lines(result)
    assert any(
        line.startswith("serious: web.secret_key is not set while the database is PostgreSQL")
        for line in lines
    ), lines
    monkeypatch.setenv("MAILCTL_WEB_SECRET_KEY", "shared-by-every-host")
    assert not any("web.secret_key" in line for line in _lines(bare_cli("config", "check")))


def test_a_data_dir_that_cannot_be_made_is_serious(bare_cli, monkeypatch, tmp_path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("MAILCTL_GENERAL_DATA_DIR", str(blocker / "mailctl"))
    monkeypatch.setenv("MAILCTL_DATABASE_URL", "sqlite:///" + str(tmp_path / "other" / "m.db"))
    lines = _lines(bare_cli("config", "check"))
    assert f"serious: general.data_dir {blocker / 'mailctl'}: {blocker} is not a directory" in lines


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_a_read_only_data_dir_is_serious(bare_cli, monkeypatch, tmp_path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    monkeypatch.setenv("MAILCTL_GENERAL_DATA_DIR", str(locked))
    lines = _lines(bare_cli("config", "check"))
    assert any(f"general.data_dir {locked}: {locked} is not writable" in line for line in lines)


def test_senders_warn_once_per_pass_about_links_nobody_can_open(
    cli, engine, real_mail, monkeypatch, caplog
) -> None:
    from aiosmtpd.controller import Controller

    from mailctl.config import load_settings
    from mailctl.schedule import Clock
    from mailctl.services.delivery import run_pass

    class Accept:
        async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
            return "250 OK"

    port = _free_port()
    controller = Controller(Accept(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        real_mail(port, delivery_batch_size=1)
        monkeypatch.delenv("MAILCTL_WEB_BASE_URL")
        for i in range(3):
            ok(cli("client", "add", f"c{i}@example.com"))
        message = ok(cli("message", "add", "--subject", "s", "--body", "b")).stdout.strip()
        args = ("mailing", "add", "--message", message, "--all-clients", "--start", "now")
        first = ok(cli(*args, "--no-send")).stdout.strip()
        second = ok(cli(*args, "--no-send")).stdout.strip()
        assert first != second

        def warnings() -> list[str]:
            return [
                r.getMessage()
                for r in caplog.records
                if r.levelno == logging.WARNING and "web.base_url is not set" in r.getMessage()
            ]

        with caplog.at_level(logging.WARNING):
            settings = load_settings()
            clock = Clock.from_settings(settings)
            summary = run_pass(engine=engine, settings=settings, clock=clock, worker="test")
            assert summary.sent == 6  # six batches of one
            assert len(warnings()) == 1
            assert "http://127.0.0.1:8000" in warnings()[0]
            run_pass(engine=engine, settings=settings, clock=clock, worker="test")  # no warning
            assert len(warnings()) == 1

            monkeypatch.setenv("MAILCTL_WEB_BASE_URL", "https://mail.example.org")
            ok(cli(*args))
            assert len(warnings()) == 1
    finally:
        controller.stop()
