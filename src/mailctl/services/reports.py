"""What reports read: the attempts log and the ledger's per-state counts."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, update
from sqlmodel import Session, select

from mailctl.db import utcnow
from mailctl.errors import Invalid
from mailctl.models import Delivery, DeliveryAttempt, DeliveryState, MailingRun, User
from mailctl.services.mailings import get_mailing, require_sendable

LOG_STATUSES = tuple(s.value for s in DeliveryState if s.value not in ("pending", "sending"))


def _status(value: str | None) -> str | None:
    if value is None:
        return None
    if value not in LOG_STATUSES:
        raise Invalid(f"unknown status {value!r}: use {', '.join(LOG_STATUSES)}")
    return value


def list_attempts(
    *,
    session: Session,
    actor: User,
    mailing_id: int,
    status: str | None = None,
    limit: int | None = 100,
    offset: int = 0,
    newest_first: bool = True,
) -> Sequence[DeliveryAttempt]:
    get_mailing(session=session, actor=actor, mailing_id=mailing_id)
    stmt = select(DeliveryAttempt).where(DeliveryAttempt.mailing_id == mailing_id)
    if (wanted := _status(status)) is not None:
        stmt = stmt.where(DeliveryAttempt.status == wanted)
    order = DeliveryAttempt.id.desc() if newest_first else DeliveryAttempt.id  # type: ignore[union-attr]
    stmt = stmt.order_by(order)
    if limit is not None:
        stmt = stmt.limit(limit).offset(offset)
    return session.exec(stmt).all()


def count_attempts(
    *, session: Session, actor: User, mailing_id: int, status: str | None = None
) -> int:
    get_mailing(session=session, actor=actor, mailing_id=mailing_id)
    stmt = (
        select(func.count())
        .select_from(DeliveryAttempt)
        .where(DeliveryAttempt.mailing_id == mailing_id)
    )
    if (wanted := _status(status)) is not None:
        stmt = stmt.where(DeliveryAttempt.status == wanted)
    return session.exec(stmt).one()


@dataclass(frozen=True)
class Report:
    mailing_id: int
    counts: dict[str, int]  # ledger rows per state, every state present
    attempts: int
    runs: int
    success_rate: float | None  # sent / (sent + failed + unknown), None before any outcome
    last_attempt_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None

    def as_dict(self) -> dict[str, object]:
        return {
            "mailing_id": self.mailing_id,
            **self.counts,
            "attempts": self.attempts,
            "runs": self.runs,
            "success_rate": self.success_rate,
            "last_attempt_at": self.last_attempt_at,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
        }


def mailing_report(*, session: Session, actor: User, mailing_id: int) -> Report:
    mailing = get_mailing(session=session, actor=actor, mailing_id=mailing_id)
    counts = {s.value: 0 for s in DeliveryState}
    for state, n in session.exec(
        select(Delivery.state, func.count())
        .where(Delivery.mailing_id == mailing_id)
        .group_by(Delivery.state)
    ).all():
        counts[state] = n
    attempts, last_at = session.exec(
        select(func.count(), func.max(DeliveryAttempt.attempted_at)).where(
            DeliveryAttempt.mailing_id == mailing_id
        )
    ).one()
    last_error = session.exec(
        select(DeliveryAttempt)
        .where(DeliveryAttempt.mailing_id == mailing_id, DeliveryAttempt.status != "sent")
        .order_by(DeliveryAttempt.id.desc())  # type: ignore[union-attr]
        .limit(1)
    ).first()
    runs = session.exec(
        select(func.count()).select_from(MailingRun).where(MailingRun.mailing_id == mailing_id)
    ).one()
    decided = counts["sent"] + counts["failed"] + counts["unknown"]
    return Report(
        mailing_id=mailing_id,
        counts=counts,
        attempts=attempts,
        runs=runs,
        success_rate=round(counts["sent"] / decided, 4) if decided else None,
        last_attempt_at=last_at,
        last_error=(mailing.last_error or (last_error.response if last_error else None)),
        last_error_at=last_error.attempted_at if last_error else None,
    )


def attempts_csv(*, session: Session, actor: User, mailing_id: int) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("attempted_at", "run_id", "email", "status", "smtp_code", "response"))
    for a in list_attempts(
        session=session, actor=actor, mailing_id=mailing_id, limit=None, newest_first=False
    ):
        writer.writerow(
            (
                a.attempted_at.isoformat(),
                a.run_id,
                a.email,
                a.status,
                a.smtp_code or "",
                a.response or "",
            )
        )
    return out.getvalue()


def requeue(*, session: Session, actor: User, mailing_id: int, unknown: bool = False) -> int:
    """Deferred rows become due now; with `unknown`, the operator accepts a possible duplicate."""
    require_sendable(session=session, actor=actor, mailing_id=mailing_id)
    now = utcnow()
    states = ["deferred"] + (["unknown"] if unknown else [])
    result = session.execute(
        update(Delivery)
        .where(Delivery.mailing_id == mailing_id, Delivery.state.in_(states))  # type: ignore[attr-defined]
        .values(state="pending", next_attempt_at=None)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def outcome_series(
    *, session: Session, actor: User, mailing_id: int
) -> list[tuple[str, dict[str, int]]]:
    """Attempts per status per hour (per day past two days), counted by the database."""
    get_mailing(session=session, actor=actor, mailing_id=mailing_id)
    where = DeliveryAttempt.mailing_id == mailing_id
    first, last = session.exec(
        select(
            func.min(DeliveryAttempt.attempted_at), func.max(DeliveryAttempt.attempted_at)
        ).where(where)
    ).one()
    if first is None or last is None:
        return []
    daily = last - first > timedelta(days=2)
    col = DeliveryAttempt.attempted_at
    if session.get_bind().dialect.name == "sqlite":
        bucket = func.strftime("%Y-%m-%d" if daily else "%Y-%m-%d %H:00", col)
    else:
        bucket = func.to_char(
            func.date_trunc("day" if daily else "hour", col.op("AT TIME ZONE")("UTC")),  # type: ignore[attr-defined]
            "YYYY-MM-DD" if daily else "YYYY-MM-DD HH24:00",
        )
    series: dict[str, dict[str, int]] = {}
    for label, status, n in session.exec(
        select(bucket, DeliveryAttempt.status, func.count())
        .where(where)
        .group_by(bucket, DeliveryAttempt.status)
    ).all():
        series.setdefault(label, {s: 0 for s in LOG_STATUSES})[status] = n
    return sorted(series.items())


def open_count(*, session: Session, mailing_id: int) -> int:
    """Rows of a mailing still to be sent, for progress bars (the caller checked access)."""
    return session.exec(
        select(func.count())
        .select_from(Delivery)
        .where(Delivery.mailing_id == mailing_id, Delivery.state.in_(("pending", "deferred")))  # type: ignore[attr-defined]
    ).one()
