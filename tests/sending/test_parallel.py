"""Several connections per sender, several senders: every recipient exactly once."""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from mailctl.models import DeliveryAttempt
from mailctl.schedule import Clock
from tests.support.ledger import attempts, ledger
from tests.support.relay import Relay


@pytest.fixture
def relay() -> Iterator[Relay]:
    with Relay(delay=0.02) as server:
        yield server


def _pass(engine, settings, worker: str = "test"):  # type: ignore[no-untyped-def]
    from mailctl.services.delivery import run_pass

    return run_pass(
        engine=engine, settings=settings, clock=Clock.from_settings(settings), worker=worker
    )


def test_four_connections_are_busy_at_once_and_each_recipient_gets_one_copy(
    engine, relay: Relay, smtp_settings, make_mailing
) -> None:
    settings = smtp_settings(relay.port, smtp_connections=4, smtp_name="relay")
    emails = [f"c{i:03d}@example.com" for i in range(120)]
    mailing_id = make_mailing(emails)

    summary = _pass(engine, settings)

    assert summary.sent == 120 and summary.stopped is None
    assert relay.counts() == collections.Counter(emails)
    assert relay.connections == 4
    assert relay.open_max == 4  # all four at once, not one after another
    rows = ledger(engine, mailing_id)
    assert {r["state"] for r in rows.values()} == {"sent"}
    log = attempts(engine, mailing_id)
    assert len(log) == 120
    with engine.connect() as conn:
        servers = set(conn.execute(select(DeliveryAttempt.server)).scalars())
    assert servers == {"relay"}  # the log names the server that answered


def test_connections_dropped_mid_message_are_retried_and_nothing_is_doubled(
    engine, smtp_settings, make_mailing
) -> None:
    # Every 7th message: the connection is reset after part of its body.
    with Relay(delay=0.005, drop_every=7) as relay:
        settings = smtp_settings(relay.port, smtp_connections=4, delivery_circuit_breaker=50)
        emails = [f"d{i:03d}@example.com" for i in range(70)]
        mailing_id = make_mailing(emails)

        for round_ in range(6):
            _pass(engine, settings, worker=f"round{round_}")
            if all(r["state"] == "sent" for r in ledger(engine, mailing_id).values()):
                break
        assert relay.dropped >= 10
    assert relay.counts() == collections.Counter(emails)  # once each, never twice
    log = attempts(engine, mailing_id)
    deferred = [a for a in log if a["status"] == "deferred"]
    assert len(deferred) == relay.dropped
    assert all("reset the connection before the end" in a["response"] for a in deferred)
    sent = collections.Counter(a["email"] for a in log if a["status"] == "sent")
    assert sent == collections.Counter(emails)


def test_several_senders_with_several_connections_never_send_twice(
    engine, relay: Relay, smtp_settings, make_mailing
) -> None:
    from mailctl.sending.engine import Sender

    settings = smtp_settings(relay.port, smtp_connections=3, delivery_batch_size=10)
    emails = [f"s{i:03d}@example.com" for i in range(150)]
    mailing_id = make_mailing(emails)
    _pass_start_only(engine, settings)

    senders = [Sender(engine, settings, worker=f"sender{i}") for i in range(3)]
    threads = [threading.Thread(target=s.deliver) for s in senders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for sender in senders:
        sender.close()

    assert relay.counts() == collections.Counter(emails)
    rows = ledger(engine, mailing_id)
    assert {r["state"] for r in rows.values()} == {"sent"}
    # Each sender took a share: they really ran side by side.
    with engine.connect() as conn:
        assert conn.execute(select(DeliveryAttempt.id)).all()
    assert relay.open_max > 3


def _pass_start_only(engine, settings) -> None:  # type: ignore[no-untyped-def]
    from mailctl.services.runs import start_due_runs

    assert start_due_runs(engine, clock=Clock.from_settings(settings), mailing_id=None)
