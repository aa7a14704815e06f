"""The ledger's compare-and-sets: a late outcome after a takeover, an in-flight lease."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from mailctl.config import load_settings
from mailctl.db import session_scope, utcnow
from mailctl.models import Delivery, DeliveryAttempt
from mailctl.sending.engine import (
    Policy,
    _load,
    _mark_sending,
    _record,
    claim_batch,
    recover_stale,
)
from mailctl.sending.transport import SENT, Outcome
from mailctl.services.mailings import Clock
from mailctl.services.runs import start_due_runs


def _in_flight(engine, make_mailing, monkeypatch):  # type: ignore[no-untyped-def]
    """One row claimed and marked `sending` by worker A, with a tiny lease."""
    monkeypatch.setenv("MAILCTL_DELIVERY_LEASE_SECONDS", "1")
    monkeypatch.setenv("MAILCTL_DELIVERY_ATTEMPT_DEADLINE_SECONDS", "0.1")
    policy = Policy.from_settings(load_settings())
    make_mailing(["ann@example.com"])
    start_due_runs(engine, clock=Clock())
    now = utcnow()
    with engine.connect() as conn:
        (row_id,) = claim_batch(conn, worker="A", policy=policy, now=now, mailing_id=None)
        (row,) = _load(conn, [row_id])
        with conn.begin():
            assert _mark_sending(conn, row_id, "A", policy, now)
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
            _record(conn, row, Outcome(SENT, 250, "ok"), policy, now, worker="A")
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
            _record(conn, row, Outcome(SENT, 250, "ok"), policy, now, worker="A")
    assert _state(engine, row.id) == "pending"  # B's to send; A's answer did not steal it
    assert _log(engine, row.id) == ["unknown", "sent"]  # but the attempt is in the log


def test_a_row_in_flight_outlives_a_short_lease(engine, make_mailing, monkeypatch) -> None:
    """The `sending` lease covers twice the attempt deadline, whatever lease_seconds says."""
    monkeypatch.setenv("MAILCTL_DELIVERY_LEASE_SECONDS", "1")
    monkeypatch.setenv("MAILCTL_DELIVERY_ATTEMPT_DEADLINE_SECONDS", "30")
    policy = Policy.from_settings(load_settings())
    make_mailing(["ann@example.com"])
    start_due_runs(engine, clock=Clock())
    now = utcnow()
    with engine.connect() as conn:
        (row_id,) = claim_batch(conn, worker="A", policy=policy, now=now, mailing_id=None)
        with conn.begin():
            assert _mark_sending(conn, row_id, "A", policy, now)
        assert recover_stale(conn, now + timedelta(seconds=10)) == 0
        assert recover_stale(conn, now + timedelta(seconds=61)) == 1
