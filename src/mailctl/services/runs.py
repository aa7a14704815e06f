"""Starting runs: the lifecycle step between a schedule and the delivery ledger.

A run starts when a compare-and-set on `mailings.next_run_at` succeeds: whoever moves it
from the due time to the next one (a daemon, cron's run-due, a person's `send`) inserts the
run and its ledger rows in the same transaction. Anyone else sees zero rows updated and moves
on, so two schedulers can never start the same run twice.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, insert, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from mailctl.db import rowcount, session_scope, utcnow
from mailctl.errors import Invalid
from mailctl.models import Delivery, Mailing, MailingRun, MailingStatus, User
from mailctl.models.delivery import OPEN
from mailctl.schedule import Clock
from mailctl.services.audiences import ledger_rows
from mailctl.services.events import RUN_FINISHED, emit
from mailctl.services.mailings import refresh_status, require_sendable


def due_mailing_ids(engine: Engine, now: datetime, mailing_id: int | None = None) -> list[int]:
    with session_scope(engine, readonly=True) as session:
        stmt = select(Mailing.id).where(
            Mailing.is_enabled == True,  # noqa: E712
            col(Mailing.next_run_at).is_not(None),
            col(Mailing.next_run_at) <= now,
        )
        if mailing_id is not None:
            stmt = stmt.where(Mailing.id == mailing_id)
        return [i for i in session.exec(stmt).all() if i is not None]


def start_run(
    session: Session, mailing_id: int, *, clock: Clock, now: datetime, early: bool = False
) -> int | None:
    """Start the due run of one mailing, if it is still due and nobody else started it.

    With `early`, a next run that is not due yet starts now instead ("send now"), and the
    schedule goes on from the occurrence after it: that occurrence is not sent a second time.
    """
    mailing = session.get(Mailing, mailing_id)
    if mailing is None or not mailing.is_enabled or mailing.next_run_at is None:
        return None
    old_next = mailing.next_run_at
    schedule = (mailing.start_at, mailing.end_at, mailing.every)
    if early and old_next > now:
        run_at: datetime | None = now
        new_next = clock.next_run_after(*schedule, old_next)
    else:
        run_at, new_next = clock.due_run(*schedule, old_next, now)
    if run_at is None and new_next == old_next:
        return None  # not due yet
    claimed = session.execute(
        update(Mailing)
        .where(col(Mailing.id) == mailing_id, col(Mailing.next_run_at) == old_next)
        .values(
            next_run_at=new_next,
            last_run_at=run_at if run_at is not None else Mailing.last_run_at,
            status=MailingStatus.started.value if run_at is not None else Mailing.status,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if rowcount(claimed) != 1:
        return None  # another scheduler got there first
    session.expire(mailing)
    if run_at is None:
        # The window closed while nothing was running: no run starts after the end.
        refresh_status(session, mailing, now)
        return None
    run = MailingRun(mailing_id=mailing_id, scheduled_at=run_at, started_at=now)
    session.add(run)
    session.flush()
    # One ledger row per client of the audience as it is now, written by the database in one
    # statement, however many.
    rows = session.execute(
        insert(Delivery)
        .from_select(
            ["run_id", "mailing_id", "client_id", "email", "state", "last_reply"],
            ledger_rows(run.id or 0, mailing),
        )
        # SQLAlchemy keeps the count of an INSERT only when asked: PostgreSQL gave -1.
        .execution_options(preserve_rowcount=True)
    )
    run.recipients = rowcount(rows)
    if not run.recipients:
        run.finished_at = now
    session.add(run)
    return run.id


def start_due_runs(
    engine: Engine, *, clock: Clock, now: datetime | None = None, mailing_id: int | None = None
) -> list[int]:
    """Start every due run (or the one mailing's), each in its own short transaction."""
    now = now or utcnow()
    started = []
    for mid in due_mailing_ids(engine, now, mailing_id):
        with session_scope(engine) as session:
            run_id = start_run(session, mid, clock=clock, now=now)
        if run_id is not None:
            started.append(run_id)
    return started


def bring_forward(
    *,
    session: Session,
    actor: User,
    mailing_id: int,
    clock: Clock,
    now: datetime | None = None,
) -> Mailing:
    """ "Send now": the owner's (or an admin's) call to start the next run at once."""
    mailing = require_sendable(session=session, actor=actor, mailing_id=mailing_id)
    now = now or utcnow()
    if mailing.end_at is not None and now >= mailing.end_at:
        raise Invalid(f"mailing {mailing_id} has ended")
    if mailing.next_run_at is None:
        open_rows = session.exec(
            select(func.count())
            .select_from(Delivery)
            .where(Delivery.mailing_id == mailing_id, col(Delivery.state).in_(OPEN))
        ).one()
        if not open_rows:
            raise Invalid(f"mailing {mailing_id} has no run left to send")
    elif mailing.next_run_at > now:
        start_run(session, mailing_id, clock=clock, now=now, early=True)
        session.refresh(mailing)
    return mailing


def close_runs(
    engine: Engine, run_ids: set[int], mailing_ids: set[int], *, now: datetime | None = None
) -> None:
    """After a pass: mark finished runs and move mailings to `finished` when nothing is left."""
    now = now or utcnow()
    with session_scope(engine) as session:
        if mailing_ids:
            run_ids = set(run_ids) | {
                i
                for i in session.exec(
                    select(MailingRun.id).where(
                        col(MailingRun.mailing_id).in_(mailing_ids),
                        col(MailingRun.finished_at).is_(None),
                    )
                ).all()
                if i is not None
            }
        for run_id in sorted(run_ids):
            run = session.get(MailingRun, run_id)
            if run is None or run.finished_at is not None:
                continue
            open_rows = session.exec(
                select(func.count())
                .select_from(Delivery)
                .where(Delivery.run_id == run_id, col(Delivery.state).in_(OPEN))
            ).one()
            if not open_rows:
                run.finished_at = now
                session.add(run)
                _emit_finished(session, run)
        for mid in mailing_ids:
            mailing = session.get(Mailing, mid)
            if mailing is not None:
                refresh_status(session, mailing, now)


def _emit_finished(session: Session, run: MailingRun) -> None:
    """run.finished for the mailing's owner's webhooks: the run and its outcomes per state."""
    mailing = session.get(Mailing, run.mailing_id)
    if mailing is None:
        return
    counts = dict(
        session.exec(
            select(Delivery.state, func.count())
            .where(Delivery.run_id == run.id)
            .group_by(col(Delivery.state))
        ).all()
    )
    emit(
        session,
        mailing.owner_id,
        RUN_FINISHED,
        {
            "mailing_id": mailing.id,
            "run_id": run.id,
            "scheduled_at": run.scheduled_at,
            "started_at": run.started_at,
            "finished_at": run.finished_at,
            "recipients": run.recipients,
            "counts": counts,
        },
    )


def mailings_to_settle(engine: Engine, now: datetime | None = None) -> set[int]:
    """Unfinished mailings with no run left to start (or past their end): maybe finished now."""
    now = now or utcnow()
    with session_scope(engine, readonly=True) as session:
        stmt = select(Mailing.id).where(
            Mailing.status != MailingStatus.finished.value,
            col(Mailing.next_run_at).is_(None) | (col(Mailing.end_at) <= now),
        )
        return {i for i in session.exec(stmt).all() if i is not None}
