"""Delivery: the one use case behind every send, whoever asks for it.

A pass starts what is due, delivers what is claimable and settles runs and statuses.
`mailctl run-due` (cron), each daemon tick, `mailctl mailing send`, the panel's "send now" and
a new mailing whose start has come all run it, so they share one behaviour, and the same
database claims keep them apart. Adapters only choose where it runs: the CLI in the
foreground with a progress bar, the panel on its background sender, the daemon on its tick.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Protocol

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from mailctl.config import Settings
from mailctl.db import session_scope
from mailctl.models import Delivery, Mailing, User
from mailctl.models.delivery import CLAIMABLE, DEFERRED
from mailctl.schedule import Clock
from mailctl.sending import ledger
from mailctl.sending.engine import Sender
from mailctl.sending.ledger import new_worker_id
from mailctl.sending.policy import Summary
from mailctl.services.mailings import is_due
from mailctl.services.runs import bring_forward, close_runs, mailings_to_settle, start_due_runs

__all__ = [
    "Progress",
    "Sender",
    "Summary",
    "is_due",
    "new_worker_id",
    "next_due",
    "release_claims",
    "request_send",
    "run_pass",
    "send_if_due",
    "send_now",
]


class Progress(Protocol):
    """What a pass tells a progress bar: how many rows it is about to send, then each outcome."""

    def begin(self, total: int) -> None: ...

    def advance(self, status: str) -> None: ...


def run_pass(
    *,
    engine: Engine,
    settings: Settings,
    clock: Clock,
    worker: str,
    mailing_id: int | None = None,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
    sender: Sender | None = None,
) -> Summary:
    """Start what is due (of one mailing, or all), deliver what is claimable, settle."""
    summary = Summary()
    started = start_due_runs(engine, clock=clock, mailing_id=mailing_id)
    summary.runs_started = len(started)
    summary.runs.update(started)
    if progress is not None:
        progress.begin(_to_send(engine, mailing_id))
    own_sender = sender is None
    sender = sender or Sender(
        engine,
        settings,
        worker=worker,
        stop=stop,
        progress=progress.advance if progress is not None else None,
    )
    try:
        sender.deliver(mailing_id=mailing_id, summary=summary)
    finally:
        if own_sender:
            sender.close()
        settle = mailings_to_settle(engine) | summary.mailings
        if mailing_id is not None:
            settle.add(mailing_id)
        close_runs(engine, summary.runs, settle)
    return summary


def request_send(
    *, session: Session, actor: User, mailing_id: int, clock: Clock, now: datetime | None = None
) -> Mailing:
    """ "Send now", the part that needs the actor: the owner's (or an admin's) call makes the
    next run due at once. Adapters that deliver in the background call this in the request,
    then hand the mailing's pass to their sender."""
    return bring_forward(session=session, actor=actor, mailing_id=mailing_id, clock=clock, now=now)


def send_now(
    *,
    engine: Engine,
    settings: Settings,
    clock: Clock,
    actor: User,
    mailing_id: int,
    worker: str,
    progress: Progress | None = None,
) -> Summary:
    """ "Send now" in the foreground: the next run is brought forward, then sent."""
    with session_scope(engine) as session:
        request_send(session=session, actor=actor, mailing_id=mailing_id, clock=clock)
    return run_pass(
        engine=engine,
        settings=settings,
        clock=clock,
        worker=worker,
        mailing_id=mailing_id,
        progress=progress,
    )


def send_if_due(
    *,
    engine: Engine,
    settings: Settings,
    clock: Clock,
    mailing: Mailing,
    worker: str,
    progress: Progress | None = None,
) -> Summary | None:
    """The start rule, in the foreground: a mailing whose run is due (start <= now < end,
    enabled) starts sending at once, with no further action; None when it is not due (the
    daemon or cron sends it when its time comes). The panel asks `is_due` and queues."""
    if mailing.id is None or not is_due(mailing):
        return None
    return run_pass(
        engine=engine,
        settings=settings,
        clock=clock,
        worker=worker,
        mailing_id=mailing.id,
        progress=progress,
    )


def next_due(engine: Engine) -> datetime | None:
    """The earliest moment something becomes due: a run to start or a deferred retry."""
    with session_scope(engine, readonly=True) as session:
        run_at = session.execute(
            select(func.min(Mailing.next_run_at)).where(
                Mailing.is_enabled == True,  # noqa: E712
                col(Mailing.next_run_at).is_not(None),
            )
        ).scalar_one()
        retry_at = session.execute(
            select(func.min(Delivery.next_attempt_at))
            .join(Mailing, col(Mailing.id) == Delivery.mailing_id)
            .where(
                Delivery.state == DEFERRED,
                col(Delivery.next_attempt_at).is_not(None),
                Mailing.is_enabled == True,  # noqa: E712
            )
        ).scalar_one()
    times = [t for t in (run_at, retry_at) if t is not None]
    return min(times) if times else None


def release_claims(engine: Engine, worker: str) -> None:
    """Give back what a stopping sender claimed and did not send (else its lease expires)."""
    with engine.connect() as conn:
        ledger.release(conn, worker)


def _to_send(engine: Engine, mailing_id: int | None) -> int:
    """Rows still to be sent, for a progress bar: claimable ones of the mailing (or all)."""
    with session_scope(engine, readonly=True) as session:
        stmt = select(func.count()).select_from(Delivery).where(col(Delivery.state).in_(CLAIMABLE))
        if mailing_id is not None:
            stmt = stmt.where(Delivery.mailing_id == mailing_id)
        return int(session.exec(stmt).one())
