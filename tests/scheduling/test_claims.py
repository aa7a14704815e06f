"""Claims in the database: a run starts once, a batch has one owner until its lease expires,
and a row left in `sending` by a dead sender becomes `unknown` instead of being resent."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine

from mailctl import schedule
from mailctl.db import session_scope, utcnow
from mailctl.models import Delivery, DeliveryAttempt, Mailing, MailingRun
from mailctl.models.delivery import SENT
from mailctl.schedule import Clock
from mailctl.sending.engine import Sender
from mailctl.sending.ledger import claim_batch, recover_stale, release
from mailctl.sending.policy import Policy
from mailctl.sending.transport import Outcome
from mailctl.services import runs
from tests.support.ledger import delivery_states
from tests.support.world import World


def _runs(engine: Engine, mailing_id: int) -> int:
    with engine.connect() as conn:
        return conn.execute(
            select(func.count()).select_from(MailingRun).where(MailingRun.mailing_id == mailing_id)
        ).scalar_one()


def test_racing_schedulers_start_a_due_run_exactly_once(
    engine: Engine, world: World, settings
) -> None:  # type: ignore[no-untyped-def]
    clock = Clock.from_settings(settings)
    for attempt in range(3):
        mailing_id, emails = world.mailing(5)
        barrier = threading.Barrier(6)
        started: list[list[int]] = []
        errors: list[BaseException] = []

        def race(mid: int = mailing_id, b: threading.Barrier = barrier) -> None:
            try:
                b.wait(timeout=30)
                started.append(runs.start_due_runs(engine, clock=clock, mailing_id=mid))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=race) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert errors == []
        assert sorted(len(s) for s in started) == [0, 0, 0, 0, 0, 1], attempt
        assert _runs(engine, mailing_id) == 1
        assert delivery_states(engine, mailing_id) == {"pending": len(emails)}


def test_the_compare_and_set_refuses_a_run_someone_else_just_started(
    engine: Engine, world: World, settings, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """As on PostgreSQL: both read the same due time; the other writer commits first."""
    mailing_id, _ = world.mailing(2)
    real_due_run = schedule.due_run

    # SQLite serialises writers with BEGIN IMMEDIATE, so simulate the other writer inside
    # our own transaction: the row changes between our read and our UPDATE.
    def due_run_with_concurrent_change(*args, **kwargs):  # type: ignore[no-untyped-def]
        result = real_due_run(*args, **kwargs)
        session.execute(
            update(Mailing)
            .where(Mailing.id == mailing_id)
            .values(next_run_at=utcnow() + timedelta(days=1))
        )
        return result

    monkeypatch.setattr(schedule, "due_run", due_run_with_concurrent_change)
    with session_scope(engine) as session:
        assert (
            runs.start_run(session, mailing_id, clock=Clock.from_settings(settings), now=utcnow())
            is None
        )
    assert _runs(engine, mailing_id) == 0


def _started(engine: Engine, world: World, settings, clients: int) -> int:  # type: ignore[no-untyped-def]
    mailing_id, _ = world.mailing(clients)
    assert runs.start_due_runs(engine, clock=Clock.from_settings(settings), mailing_id=mailing_id)
    return mailing_id


def test_a_claimed_batch_is_not_claimed_again_until_its_lease_expires(
    engine: Engine, world: World, settings
) -> None:  # type: ignore[no-untyped-def]
    _started(engine, world, settings, 6)
    policy = Policy.from_settings(settings.with_overrides("delivery", batch_size=4))
    now = utcnow()
    with engine.connect() as conn:
        a = claim_batch(conn, worker="a", policy=policy, now=now, mailing_id=None)
        b = claim_batch(conn, worker="b", policy=policy, now=now, mailing_id=None)
        c = claim_batch(conn, worker="c", policy=policy, now=now, mailing_id=None)
        assert len(a) == 4 and len(b) == 2 and c == []
        assert not set(a) & set(b)
        # Just before a's lease runs out nobody takes its rows; just after, someone does.
        almost = now + policy.lease - timedelta(seconds=1)
        assert claim_batch(conn, worker="c", policy=policy, now=almost, mailing_id=None) == []
        after = now + policy.lease + timedelta(seconds=1)
        taken = claim_batch(conn, worker="c", policy=policy, now=after, mailing_id=None)
        assert sorted(taken) == sorted(a + b)[:4]
        # A released claim is free at once.
        release(conn, "c")
        assert len(claim_batch(conn, worker="d", policy=policy, now=now, mailing_id=None)) == 4


def test_an_expired_sending_row_becomes_unknown_and_is_not_resent(
    engine: Engine, world: World, settings
) -> None:  # type: ignore[no-untyped-def]
    mailing_id = _started(engine, world, settings, 3)
    policy = Policy.from_settings(settings)
    now = utcnow()
    with engine.connect() as conn:
        ids = claim_batch(conn, worker="dead", policy=policy, now=now, mailing_id=None)
        with conn.begin():
            # Two rows were handed to the mail server when their sender died; one lease is
            # still running (that sender may be alive and slow), one has expired.
            conn.execute(
                update(Delivery)
                .where(Delivery.id == ids[0])
                .values(state="sending", lease_until=now - timedelta(seconds=1))
            )
            conn.execute(
                update(Delivery)
                .where(Delivery.id == ids[1])
                .values(state="sending", lease_until=now + timedelta(minutes=5))
            )
        assert recover_stale(conn, now) == 1
        assert recover_stale(conn, now) == 0
    assert delivery_states(engine, mailing_id) == {"unknown": 1, "sending": 1, "pending": 1}
    with engine.connect() as conn:
        (log,) = conn.execute(select(DeliveryAttempt.status, DeliveryAttempt.delivery_id)).all()
    assert log == ("unknown", ids[0])

    # Once the dead sender's claim on its last row expires, a later pass sends only that row.
    with engine.begin() as conn:
        conn.execute(
            update(Delivery)
            .where(Delivery.id == ids[2])
            .values(lease_until=utcnow() - timedelta(seconds=1))
        )

    class Recorder:
        sent: list[str] = []

        def send(self, *, sender: str, recipient: str, data: bytes, meanwhile=None) -> Outcome:
            self.sent.append(recipient)
            return Outcome(SENT, 250, "ok")

        def close(self) -> None:
            pass

    transport = Recorder()
    Sender(engine, settings, worker="next", transport=transport).deliver()
    assert len(transport.sent) == 1
    assert delivery_states(engine, mailing_id) == {"unknown": 1, "sending": 1, "sent": 1}


def test_a_stop_finishes_the_message_in_flight_and_releases_the_rest(
    engine: Engine, world: World, settings
) -> None:  # type: ignore[no-untyped-def]
    mailing_id = _started(engine, world, settings, 10)
    stop = threading.Event()

    class StopAfterTwo:
        count = 0

        def send(self, *, sender: str, recipient: str, data: bytes, meanwhile=None) -> Outcome:
            self.count += 1
            if self.count == 2:
                stop.set()  # the signal arrives while this message is in flight
            return Outcome(SENT, 250, "ok")

        def close(self) -> None:
            pass

    sender = Sender(engine, settings, worker="daemon:x", transport=StopAfterTwo(), stop=stop)
    sender.deliver()
    assert delivery_states(engine, mailing_id) == {"sent": 2, "pending": 8}
    with engine.connect() as conn:
        assert (
            conn.execute(
                select(func.count()).select_from(Delivery).where(Delivery.claimed_by.is_not(None))  # type: ignore[union-attr]
            ).scalar_one()
            == 0
        )
