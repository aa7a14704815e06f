"""The ledger's compare-and-sets: a late outcome after a takeover, an in-flight lease."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy.exc import DBAPIError
from sqlmodel import select

from mailctl.config import load_settings
from mailctl.db import is_sqlite, session_scope, utcnow
from mailctl.models import Delivery, DeliveryAttempt
from mailctl.models.delivery import SENT
from mailctl.schedule import Clock
from mailctl.sending.engine import Sender
from mailctl.sending.ledger import claim_batch, load_rows, mark_sending, record, recover_stale
from mailctl.sending.policy import Policy, Summary
from mailctl.sending.transport import Outcome
from mailctl.services.runs import start_due_runs


def _in_flight(engine, make_mailing, monkeypatch):  # type: ignore[no-untyped-def]
    """One row claimed and marked `sending` by worker A, with a tiny lease."""
    monkeypatch.setenv("MAILCTL_DELIVERY_LEASE_SECONDS", "1")
    monkeypatch.setenv("MAILCTL_DELIVERY_ATTEMPT_DEADLINE_SECONDS", "0.1")
    policy = Policy.from_settings(load_settings())
    make_mailing(["ann@example.com"])
    start_due_runs(engine, clock=Clock(tz="UTC", period_seconds=None))
    now = utcnow()
    with engine.connect() as conn:
        (row_id,) = claim_batch(conn, worker="A", policy=policy, now=now, mailing_id=None)
        (row,) = load_rows(conn, [row_id], "a-secret")
        with conn.begin():
            assert mark_sending(conn, row_id, "A", policy, now)
    return policy, row, now


def _state(engine, row_id: int) -> str:  # type: ignore[no-untyped-def]
    with session_scope(engine, readonly=True) as s:
        return s.get(Delivery, row_id).state


def _log(engine, row_id: int) -> list[str]:  # type: ignore[no-untyped-def]
    with session_scope(engine, readonly=True) as s:
        rows = s.exec(select(DeliveryAttempt).where(DeliveryAttempt.delivery_id == row_id))
        return [a.status for a in rows.all()]


def test_a_late_answer_after_a_takeover_is_the_truth(engine, make_mailing, monkeypatch) -> None:
    policy, row, now = _in_flight(engine, make_mailing, monkeypatch)
    with engine.connect() as conn:
        # Another process thinks A died: the row becomes unknown.
        assert recover_stale(conn, now + timedelta(seconds=5)) == 1
        assert _state(engine, row.id) == "unknown"
        # A was only slow: its "250" arrives, and the row says sent.
        with conn.begin():
            record(conn, row, Outcome(SENT, 250, "ok"), policy, now, worker="A")
    assert _state(engine, row.id) == "sent"
    assert _log(engine, row.id) == ["unknown", "sent"]


def test_a_late_answer_leaves_a_requeued_row_to_its_new_holder(
    engine, make_mailing, monkeypatch
) -> None:
    policy, row, now = _in_flight(engine, make_mailing, monkeypatch)
    with engine.connect() as conn:
        recover_stale(conn, now + timedelta(seconds=5))
        with conn.begin():  # the operator: `mailing retry --unknown`, and B claims it
            conn.execute(
                Delivery.__table__.update()  # type: ignore[attr-defined]
                .where(Delivery.__table__.c.id == row.id)  # type: ignore[attr-defined]
                .values(state="pending", claimed_by="B")
            )
        with conn.begin():
            record(conn, row, Outcome(SENT, 250, "ok"), policy, now, worker="A")
    assert _state(engine, row.id) == "pending"  # B's to send; A's answer did not steal it
    assert _log(engine, row.id) == ["unknown", "sent"]  # but the attempt is in the log


def test_a_row_in_flight_outlives_a_short_lease(engine, make_mailing, monkeypatch) -> None:
    """The `sending` lease covers twice the attempt deadline, whatever lease_seconds says."""
    monkeypatch.setenv("MAILCTL_DELIVERY_LEASE_SECONDS", "1")
    monkeypatch.setenv("MAILCTL_DELIVERY_ATTEMPT_DEADLINE_SECONDS", "30")
    policy = Policy.from_settings(load_settings())
    make_mailing(["ann@example.com"])
    start_due_runs(engine, clock=Clock(tz="UTC", period_seconds=None))
    now = utcnow()
    with engine.connect() as conn:
        (row_id,) = claim_batch(conn, worker="A", policy=policy, now=now, mailing_id=None)
        with conn.begin():
            assert mark_sending(conn, row_id, "A", policy, now)
        assert recover_stale(conn, now + timedelta(seconds=10)) == 0
        assert recover_stale(conn, now + timedelta(seconds=61)) == 1


def test_recording_the_same_outcome_twice_logs_it_once(engine, make_mailing, monkeypatch) -> None:
    """A commit that reported an error but went through is recorded again: no second log row."""
    policy, row, now = _in_flight(engine, make_mailing, monkeypatch)
    with engine.connect() as conn:
        for _ in range(2):
            with conn.begin():
                assert record(conn, row, Outcome(SENT, 250, "ok"), policy, now, worker="A") == SENT
        # A later attempt of the same row (another time) is an attempt of its own.
        with conn.begin():
            record(conn, row, Outcome(SENT, 250, "ok"), policy, now + timedelta(seconds=1))
    assert _state(engine, row.id) == "sent"
    assert _log(engine, row.id) == ["sent", "sent"]


class _Recorder:
    def __init__(self, pause: float = 0.0, on_send=None) -> None:  # type: ignore[no-untyped-def]
        self.sent: list[str] = []
        self.pause = pause
        self.on_send = on_send

    def send(self, *, sender: str, recipient: str, data: bytes, meanwhile=None) -> Outcome:  # type: ignore[no-untyped-def]
        self.sent.append(recipient)
        if self.on_send is not None:
            self.on_send(len(self.sent))
        time.sleep(self.pause)
        if meanwhile is not None:
            meanwhile()
        return Outcome(SENT, 250, "ok")

    def close(self) -> None:
        self.sent.append("closed")


def test_a_failed_commit_counts_each_outcome_once(engine, make_mailing, settings) -> None:
    """The third `sending` mark fails: the two messages that went out are sent, counted and
    logged once each; the rest stays pending for the next pass."""
    if not is_sqlite(engine):
        pytest.skip("the failure is injected with a SQLite trigger")
    mailing_id = make_mailing([f"c{i}@example.com" for i in range(5)])
    start_due_runs(engine, clock=Clock(tz="UTC", period_seconds=None))
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER third_mark_fails BEFORE UPDATE OF state ON deliveries "
            "WHEN NEW.state = 'sending' AND NEW.email = 'c2@example.com' "
            "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
        )
    progress: list[str] = []
    summary = Summary()
    transport = _Recorder()
    sender = Sender(engine, settings, worker="A", transport=transport, progress=progress.append)
    with pytest.raises(DBAPIError, match="injected failure"):
        sender.deliver(summary=summary)
    assert transport.sent == ["c0@example.com", "c1@example.com"]
    assert summary.sent == 2 and progress == ["sent", "sent"]
    with session_scope(engine, readonly=True) as s:
        rows = s.exec(select(Delivery).where(Delivery.mailing_id == mailing_id)).all()
        states = {r.email: (r.state, r.claimed_by) for r in rows}
        log = s.exec(select(DeliveryAttempt.email, DeliveryAttempt.status)).all()
    assert states == {
        "c0@example.com": ("sent", None),
        "c1@example.com": ("sent", None),
        "c2@example.com": ("pending", None),
        "c3@example.com": ("pending", None),
        "c4@example.com": ("pending", None),
    }
    assert sorted(log) == [("c0@example.com", "sent"), ("c1@example.com", "sent")]


def test_a_long_batch_renews_the_lease_of_the_rows_it_still_holds(
    engine, make_mailing, monkeypatch
) -> None:
    monkeypatch.setenv("MAILCTL_DELIVERY_LEASE_SECONDS", "3")  # renewed every second
    settings = load_settings()
    make_mailing([f"c{i}@example.com" for i in range(4)])
    start_due_runs(engine, clock=Clock(tz="UTC", period_seconds=None))
    leases: dict[int, object] = {}

    def lease_of_last(call: int) -> None:
        with session_scope(engine, readonly=True) as s:
            last = s.exec(select(Delivery).where(Delivery.email == "c3@example.com")).one()
            assert last.state == "pending" and last.claimed_by == "A"
            leases[call] = last.lease_until

    transport = _Recorder(pause=0.6, on_send=lambda n: n in (1, 3) and lease_of_last(n))
    Sender(engine, settings, worker="A", transport=transport).deliver()
    assert transport.sent[:4] == [f"c{i}@example.com" for i in range(4)]
    assert leases[3] > leases[1]  # type: ignore[operator]
