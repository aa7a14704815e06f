"""A sender killed with SIGKILL mid-run: the next pass sends the rest, never anything twice."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
from sqlalchemy import select

from mailctl.models import Delivery, DeliveryAttempt
from mailctl.schedule import Clock
from tests.support.ledger import attempts, ledger
from tests.support.smtp import Sink

CLIENTS = 300


@pytest.fixture
def slow_sink(start_sink: Callable[..., Sink]) -> Sink:
    return start_sink(delay=0.02)


def test_sigkill_mid_run_loses_nothing_and_sends_nothing_twice(
    engine, slow_sink: Sink, smtp_settings, make_mailing
) -> None:
    from mailctl.services.delivery import run_pass

    # A row in flight is leased for twice the attempt deadline: 1 s here, so 2 s in all.
    settings = smtp_settings(
        slow_sink.port,
        delivery_lease_seconds=2,
        delivery_attempt_deadline_seconds=1,
        delivery_batch_size=40,
        smtp_timeout=5,
    )
    emails = [f"c{i:03d}@example.com" for i in range(CLIENTS)]
    mailing_id = make_mailing(emails)

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mailctl",
            "--as",
            "owner@example.com",
            "mailing",
            "send",
            str(mailing_id),
        ],
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while len(slow_sink.handler.rcpts()) < 90 and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.01)
        assert len(slow_sink.handler.rcpts()) >= 90, "the sender never got going"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    at_kill = len(slow_sink.handler.rcpts())
    assert at_kill < CLIENTS, "killed too late to prove anything"

    # What the dead sender left: its in-flight row in `sending`, its claimed rows leased.
    with engine.connect() as conn:
        left = collections.Counter(conn.execute(select(Delivery.state)).scalars())
    assert left["sending"] <= 1
    assert left["pending"] > 0

    time.sleep(2.2)  # the dead sender's lease runs out; then a new pass takes over
    summary = run_pass(
        engine=engine, settings=settings, clock=Clock.from_settings(settings), worker="after-crash"
    )
    assert summary.stopped is None

    copies = collections.Counter(slow_sink.handler.rcpts())
    rows = ledger(engine, mailing_id)
    unknown = [e for e, r in rows.items() if r["state"] == "unknown"]
    assert len(unknown) <= 1, unknown
    for address in emails:
        if address in unknown:
            assert copies[address] <= 1
        else:
            assert rows[address]["state"] == "sent", rows[address]
            assert copies[address] == 1, (address, copies[address])
    assert sum(copies.values()) == CLIENTS - sum(1 for e in unknown if copies[e] == 0)

    log = attempts(engine, mailing_id)
    for address in unknown:
        entries = [a for a in log if a["email"] == address]
        assert [a["status"] for a in entries] == ["unknown"]
        assert "stopped while this message was in flight" in entries[0]["response"]
    # Every sent row has exactly one log row saying so.
    sent_log = collections.Counter(a["email"] for a in log if a["status"] == "sent")
    assert all(sent_log[e] == 1 for e, r in rows.items() if r["state"] == "sent")
    with engine.connect() as conn:
        assert conn.execute(select(DeliveryAttempt.id)).first() is not None

    # Nothing is left to do, and a further pass sends nothing.
    run_pass(engine=engine, settings=settings, clock=Clock.from_settings(settings), worker="again")
    assert sum(collections.Counter(slow_sink.handler.rcpts()).values()) == sum(copies.values())
