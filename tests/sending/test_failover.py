"""Several SMTP servers: weights, priorities, a dead one failing over, a refused login."""

from __future__ import annotations

import collections
from pathlib import Path

from sqlalchemy import select

from mailctl.config import load_settings
from mailctl.models import DeliveryAttempt, SmtpServerState
from mailctl.schedule import Clock
from tests.support.faultserver import FaultServer
from tests.support.ledger import ledger
from tests.support.relay import Relay
from tests.support.smtp import free_port


def _servers(tmp_path: Path, monkeypatch, *tables: str) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "servers.toml"
    config.write_text(
        '[delivery]\ntransport = "smtp"\nfrom_address = "news@example.org"\n'
        "attempt_deadline_seconds = 3\nretry_first_seconds = 0\n"
        "[smtp]\ntimeout = 1\n" + "".join(f"\n[[smtp.servers]]\n{t}" for t in tables)
    )
    monkeypatch.setenv("MAILCTL_CONFIG", str(config))


def _pass(engine):  # type: ignore[no-untyped-def]
    from mailctl.services.delivery import run_pass

    settings = load_settings()
    return run_pass(
        engine=engine, settings=settings, clock=Clock.from_settings(settings), worker="test"
    )


def _answered_by(engine) -> collections.Counter[str]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        rows = conn.execute(
            select(DeliveryAttempt.server).where(DeliveryAttempt.status == "sent")
        ).scalars()
        return collections.Counter(rows)


def test_servers_of_one_priority_share_the_load_by_weight(
    engine, tmp_path, monkeypatch, make_mailing
) -> None:
    with Relay(delay=0.005) as big, Relay(delay=0.005) as small:
        _servers(
            tmp_path,
            monkeypatch,
            f'name = "big"\nhost = "127.0.0.1"\nport = {big.port}\nweight = 3\nconnections = 2\n',
            f'name = "small"\nhost = "127.0.0.1"\nport = {small.port}\nweight = 1\n'
            "connections = 2\n",
        )
        emails = [f"w{i:02d}@example.com" for i in range(40)]
        make_mailing(emails)
        summary = _pass(engine)
    assert summary.sent == 40
    assert (len(big.rcpts()), len(small.rcpts())) == (30, 10)
    assert _answered_by(engine) == {"big": 30, "small": 10}
    assert collections.Counter(big.rcpts() + small.rcpts()) == collections.Counter(emails)


def test_a_dead_server_fails_over_and_a_slow_one_keeps_its_share(
    engine, tmp_path, monkeypatch, make_mailing
) -> None:
    dead = free_port()  # nothing listens there
    with Relay(delay=0.05) as slow, Relay(delay=0.002) as healthy:
        _servers(
            tmp_path,
            monkeypatch,
            f'name = "dead"\nhost = "127.0.0.1"\nport = {dead}\n',
            f'name = "slow"\nhost = "127.0.0.1"\nport = {slow.port}\n',
            f'name = "healthy"\nhost = "127.0.0.1"\nport = {healthy.port}\n',
        )
        emails = [f"f{i:02d}@example.com" for i in range(45)]
        mailing_id = make_mailing(emails)
        summary = _pass(engine)
    # Nobody waits for the dead server: its message went to the next one at once.
    assert summary.sent == 45 and summary.deferred == 0 and summary.stopped is None
    assert {r["state"] for r in ledger(engine, mailing_id).values()} == {"sent"}
    assert collections.Counter(slow.rcpts() + healthy.rcpts()) == collections.Counter(emails)
    answered = _answered_by(engine)
    assert set(answered) == {"slow", "healthy"}
    # Equal weights: the two living servers took equal shares (the dead one's first pick
    # went to one of them).
    assert abs(answered["slow"] - answered["healthy"]) <= 1
    with engine.connect() as conn:
        health = conn.execute(
            select(SmtpServerState.health).where(SmtpServerState.name == "dead")
        ).scalar_one()
    assert health.startswith("out of rotation for 30s: connect: connection refused")


def test_a_lower_priority_server_sends_only_while_the_first_is_down(
    engine, tmp_path, monkeypatch, make_mailing
) -> None:
    with Relay() as backup:
        primary = FaultServer("refuse", down_for=60.0).start()
        try:
            _servers(
                tmp_path,
                monkeypatch,
                f'name = "primary"\nhost = "127.0.0.1"\nport = {primary.port}\n',
                f'name = "backup"\nhost = "127.0.0.1"\nport = {backup.port}\npriority = 1\n',
            )
            make_mailing([f"p{i}@example.com" for i in range(10)])
            summary = _pass(engine)
        finally:
            primary.stop()
    assert summary.sent == 10
    assert _answered_by(engine) == {"backup": 10}


def test_a_refused_login_takes_that_server_out_and_the_other_carries_on(
    engine, tmp_path, monkeypatch, make_mailing
) -> None:
    with Relay() as other:
        locked = FaultServer("535_auth").start()
        try:
            _servers(
                tmp_path,
                monkeypatch,
                f'name = "locked"\nhost = "127.0.0.1"\nport = {locked.port}\n'
                'username = "user"\npassword = "wrong"\n',
                f'name = "other"\nhost = "127.0.0.1"\nport = {other.port}\n',
            )
            make_mailing([f"a{i}@example.com" for i in range(12)])
            summary = _pass(engine)
        finally:
            locked.stop()
    assert summary.sent == 12 and summary.stopped is None
    assert _answered_by(engine) == {"other": 12}
    assert locked.connections == 1  # one login tried, not one per connection or message
