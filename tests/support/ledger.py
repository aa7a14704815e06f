"""Reads of the delivery ledger, the attempts log and the runs, straight from the database."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from mailctl.models import Delivery, DeliveryAttempt, Mailing, MailingRun, Worker
from mailctl.models.delivery import OPEN


def states(engine: Engine, mailing_id: int) -> dict[str, str]:
    """email -> its ledger row's state."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(Delivery.email, Delivery.state).where(Delivery.mailing_id == mailing_id)
        ).all()
    return {email: state for email, state in rows}


def ledger(engine: Engine, mailing_id: int) -> dict[str, Any]:
    """email -> the ledger row (as a mapping)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(Delivery.__table__).where(Delivery.mailing_id == mailing_id)  # type: ignore[attr-defined]
        ).mappings()
        return {r["email"]: dict(r) for r in rows}


def delivery_states(engine: Engine, mailing_id: int | None = None) -> Counter[str]:
    """How many ledger rows are in each state (of one mailing, or of all)."""
    stmt = select(Delivery.state, func.count()).group_by(Delivery.state)
    if mailing_id is not None:
        stmt = stmt.where(Delivery.mailing_id == mailing_id)
    with engine.connect() as conn:
        return Counter({state: n for state, n in conn.execute(stmt)})


def open_rows(engine: Engine, mailing_id: int) -> tuple[int, int]:
    """(rows in the ledger, rows still pending/sending/deferred) for one mailing."""
    with engine.connect() as conn:
        total = conn.execute(
            select(func.count()).select_from(Delivery).where(Delivery.mailing_id == mailing_id)
        ).scalar_one()
        left = conn.execute(
            select(func.count())
            .select_from(Delivery)
            .where(Delivery.mailing_id == mailing_id, Delivery.state.in_(OPEN))  # type: ignore[attr-defined]
        ).scalar_one()
    return int(total), int(left)


def sent_per_client(engine: Engine, mailing_id: int) -> Counter[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(Delivery.email).where(
                Delivery.mailing_id == mailing_id, Delivery.state == "sent"
            )
        ).scalars()
        return Counter(rows)


def attempts(engine: Engine, mailing_id: int) -> list[dict[str, Any]]:
    """The mailing's log rows, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(DeliveryAttempt.__table__)  # type: ignore[attr-defined]
            .where(DeliveryAttempt.mailing_id == mailing_id)
            .order_by(DeliveryAttempt.id)  # type: ignore[arg-type]
        ).mappings()
        return [dict(r) for r in rows]


def attempt_count(engine: Engine, mailing_id: int) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(DeliveryAttempt)
                .where(DeliveryAttempt.mailing_id == mailing_id)
            ).scalar_one()
        )


def attempt_statuses(engine: Engine, mailing_id: int) -> dict[str, Counter[str]]:
    """email -> how many log rows of each status."""
    out: dict[str, Counter[str]] = {}
    with engine.connect() as conn:
        for email, status in conn.execute(
            select(DeliveryAttempt.email, DeliveryAttempt.status).where(
                DeliveryAttempt.mailing_id == mailing_id
            )
        ):
            out.setdefault(email, Counter())[status] += 1
    return out


def mailing_error(engine: Engine, mailing_id: int) -> str | None:
    with engine.connect() as conn:
        return conn.execute(select(Mailing.last_error).where(Mailing.id == mailing_id)).scalar_one()


def mailing_row(engine: Engine, mailing_id: int) -> dict[str, Any]:
    with engine.connect() as conn:
        row = (
            conn.execute(
                select(Mailing.__table__).where(Mailing.id == mailing_id)  # type: ignore[attr-defined]
            )
            .mappings()
            .one()
        )
        return dict(row)


def runs_of(engine: Engine, mailing_id: int) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(MailingRun.__table__)  # type: ignore[attr-defined]
            .where(MailingRun.mailing_id == mailing_id)
            .order_by(MailingRun.scheduled_at)  # type: ignore[arg-type]
        ).mappings()
        return [dict(r) for r in rows]


def worker_rows(engine: Engine) -> list[dict[str, Any]]:
    """The heartbeat table."""
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(Worker.__table__)).mappings()]  # type: ignore[attr-defined]
