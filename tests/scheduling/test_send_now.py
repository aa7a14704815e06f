""" "Send now" brings the next run forward; the scheduled time then sends nothing again."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from mailctl.db import session_scope, utcnow
from mailctl.models import Delivery, Mailing, MailingRun, User
from mailctl.schedule import Clock
from mailctl.services import clients, mailings, messages
from mailctl.services.runs import bring_forward, start_due_runs

CLOCK = Clock(tz="Europe/Berlin", period_seconds=None)


def _mailing(engine, make_user, every: str, start_in: timedelta) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    owner = make_user("user")
    with session_scope(engine) as s:
        actor = s.get(User, owner.id)
        ids = [
            clients.add_client(session=s, actor=actor, email=f"c{i}@example.com").id
            for i in range(3)
        ]
        message = messages.add_message(session=s, actor=actor, subject="S", body="B")
        mailing = mailings.add_mailing(
            session=s,
            actor=actor,
            message_id=message.id,
            start=utcnow() + start_in,
            every=every,
            client_ids=ids,
            clock=CLOCK,
        )
        return mailing.id, owner.id


def _runs(engine, mailing_id: int) -> list[MailingRun]:  # type: ignore[no-untyped-def]
    with session_scope(engine, readonly=True) as s:
        return list(s.exec(select(MailingRun).where(MailingRun.mailing_id == mailing_id)).all())


def _send_now(engine, mailing_id: int, owner_id: int, now) -> None:  # type: ignore[no-untyped-def]
    with session_scope(engine) as s:
        bring_forward(
            session=s, actor=s.get(User, owner_id), mailing_id=mailing_id, clock=CLOCK, now=now
        )


def test_a_one_off_sent_early_is_not_sent_again_at_its_start(engine, make_user) -> None:
    mailing_id, owner_id = _mailing(engine, make_user, "once", timedelta(hours=2))
    now = utcnow()
    _send_now(engine, mailing_id, owner_id, now)
    assert len(_runs(engine, mailing_id)) == 1
    with session_scope(engine, readonly=True) as s:
        assert s.get(Mailing, mailing_id).next_run_at is None
        assert len(s.exec(select(Delivery).where(Delivery.mailing_id == mailing_id)).all()) == 3
    # The original start time comes: nothing more starts.
    assert start_due_runs(engine, clock=CLOCK, now=now + timedelta(hours=3)) == []
    assert len(_runs(engine, mailing_id)) == 1


def test_a_periodic_run_sent_early_moves_the_schedule_on(engine, make_user) -> None:
    mailing_id, owner_id = _mailing(engine, make_user, "day", timedelta(hours=2))
    with session_scope(engine, readonly=True) as s:
        first = s.get(Mailing, mailing_id).next_run_at
    now = utcnow()
    _send_now(engine, mailing_id, owner_id, now)
    with session_scope(engine, readonly=True) as s:
        assert s.get(Mailing, mailing_id).next_run_at == first + timedelta(days=1)
    # At the brought-forward occurrence's time nothing starts; the day after, one run does.
    assert start_due_runs(engine, clock=CLOCK, now=first + timedelta(minutes=1)) == []
    assert len(start_due_runs(engine, clock=CLOCK, now=first + timedelta(days=1, minutes=1))) == 1
    assert len(_runs(engine, mailing_id)) == 2


def test_send_now_on_a_due_mailing_starts_only_the_due_run(engine, make_user) -> None:
    mailing_id, owner_id = _mailing(engine, make_user, "once", timedelta(0))
    _send_now(engine, mailing_id, owner_id, utcnow() + timedelta(seconds=1))
    assert start_due_runs(engine, clock=CLOCK, now=utcnow() + timedelta(seconds=2)) != []
    assert start_due_runs(engine, clock=CLOCK, now=utcnow() + timedelta(days=1)) == []
    assert len(_runs(engine, mailing_id)) == 1
