"""Account notices and test sends go through the same servers as mailings: by priority and
weight, and on to the next server when one is down (not only ever the first one)."""

from __future__ import annotations

import collections
from pathlib import Path

from mailctl.config import load_settings
from mailctl.models.delivery import DEFERRED, SENT
from mailctl.sending.notices import send_reset
from tests.support.relay import Relay
from tests.support.smtp import free_port


def _servers(tmp_path: Path, monkeypatch, *tables: str) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "servers.toml"
    config.write_text(
        '[delivery]\ntransport = "smtp"\nfrom_address = "news@example.org"\n'
        "attempt_deadline_seconds = 3\n[smtp]\ntimeout = 1\n"
        + "".join(f"\n[[smtp.servers]]\n{t}" for t in tables)
    )
    monkeypatch.setenv("MAILCTL_CONFIG", str(config))


def test_a_password_reset_fails_over_when_the_first_server_is_down(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    dead = free_port()  # nothing listens there
    with Relay() as backup:
        _servers(
            tmp_path,
            monkeypatch,
            f'name = "primary"\nhost = "127.0.0.1"\nport = {dead}\npriority = 0\n',
            f'name = "backup"\nhost = "127.0.0.1"\nport = {backup.port}\npriority = 1\n',
        )
        settings = load_settings()
        outcome = send_reset(settings=settings, to="ann@example.org", link="https://x/reset/1")
        assert outcome.status == SENT, outcome
        assert outcome.server == "backup"
        assert backup.rcpts() == ["ann@example.org"]
        # The dead server stays out of rotation for the next notice: straight to the backup.
        again = send_reset(settings=settings, to="bob@example.org", link="https://x/reset/2")
        assert again.status == SENT and again.server == "backup"


def test_notices_share_servers_by_priority_and_weight(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    with Relay() as big, Relay() as small, Relay() as spare:
        _servers(
            tmp_path,
            monkeypatch,
            f'name = "big"\nhost = "127.0.0.1"\nport = {big.port}\nweight = 3\n',
            f'name = "small"\nhost = "127.0.0.1"\nport = {small.port}\nweight = 1\n',
            f'name = "spare"\nhost = "127.0.0.1"\nport = {spare.port}\npriority = 5\n',
        )
        settings = load_settings()
        servers = collections.Counter(
            send_reset(settings=settings, to=f"u{i}@example.org", link="https://x/r").server
            for i in range(8)
        )
        assert servers == {"big": 6, "small": 2}  # smooth weighted round robin: exact shares
        assert spare.rcpts() == []  # a higher priority is only for when those are down


def test_a_notice_no_server_takes_fails_with_the_reason(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _servers(
        tmp_path,
        monkeypatch,
        f'name = "a"\nhost = "127.0.0.1"\nport = {free_port()}\n',
        f'name = "b"\nhost = "127.0.0.1"\nport = {free_port()}\n',
    )
    outcome = send_reset(settings=load_settings(), to="ann@example.org", link="https://x/r")
    # Both were tried (the first taken out of rotation on the way): the last one's answer.
    assert outcome.status == DEFERRED and outcome.server == "b", outcome
    assert "connection refused" in outcome.reply, outcome.reply
