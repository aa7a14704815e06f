"""What reports read: the attempts log and the ledger's per-state counts."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import chain
from typing import Any, cast

from sqlalchemy import Row, func, tuple_, update
from sqlmodel import Session, col, select

from mailctl.db import rowcount
from mailctl.errors import Invalid
from mailctl.models import Delivery, DeliveryAttempt, DeliveryState, Mailing, MailingRun, User
from mailctl.models.delivery import (
    DECIDED,
    DEFERRED,
    FAILED,
    LOGGED,
    OPEN,
    PENDING,
    SENT,
    UNKNOWN,
)
from mailctl.services.bounce_reports import bounce_csv_rows
from mailctl.services.csvfile import CsvStream
from mailctl.services.mailings import get_mailing, require_sendable
from mailctl.services.status import quota_note
from mailctl.services.validation import ID_MAX

LOG_STATUSES = LOGGED
LOG_PAGE = 50
# Past this many attempts the log says "more than" instead of counting every row per page.
LOG_COUNT_CAP = 10_000


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
    older_than: tuple[datetime, int] | None = None,
    newer_than: tuple[datetime, int] | None = None,
) -> Sequence[DeliveryAttempt]:
    """One page of the log in (attempted_at, id) order, the order of ix_attempts_mailing_time.

    Ordered that way the index hands rows over already sorted, and a keyset cursor
    (`older_than` / `newer_than` = the (attempted_at, id) of a row on the page next to it)
    jumps straight to a page at any depth; ordering by id alone made the database sort every
    row of the mailing (25 ms for page 1, 160 ms for the last at 100,000 rows on SQLite).
    Pages come back newest first (or oldest first without `newest_first`).
    """
    get_mailing(session=session, actor=actor, mailing_id=mailing_id)
    a = DeliveryAttempt
    key = tuple_(a.attempted_at, a.id)
    stmt = select(a).where(a.mailing_id == mailing_id)
    if (wanted := _status(status)) is not None:
        stmt = stmt.where(a.status == wanted)
    ascending = (col(a.attempted_at), col(a.id))
    descending = (col(a.attempted_at).desc(), col(a.id).desc())
    if newer_than is not None:
        stmt = stmt.where(key > tuple_(*newer_than)).order_by(*ascending)
        rows = list(session.exec(stmt.limit(limit)).all())
        return rows[::-1] if newest_first else rows
    # From the cursor when there is one; by offset for a bare page number.
    stmt = stmt.where(key < tuple_(*older_than)) if older_than else stmt.offset(offset)
    stmt = stmt.order_by(*(descending if newest_first else ascending))
    if limit is not None:
        stmt = stmt.limit(limit)
    return session.exec(stmt).all()


Cursor = tuple[datetime, int]  # (attempted_at, id) of a row: where a page starts


def parse_cursor(value: str) -> Cursor | None:
    """A keyset cursor "ISO-TIME_ID" from a link; nonsense reads as none (the first page)."""
    at, _, ident = value.rpartition("_")
    try:
        when = datetime.fromisoformat(at)
    except ValueError:
        return None
    if when.tzinfo is None or not ident.isdigit() or int(ident) >= ID_MAX:
        return None
    return when, int(ident)


def cursor_of(attempt: DeliveryAttempt) -> str:
    return f"{attempt.attempted_at.isoformat()}_{attempt.id}"


@dataclass(frozen=True)
class AttemptsPage:
    """One page of the attempts log, newest first, with the links to its neighbours.

    A link is the query of the page it leads to (None: no such page). "older" and "newer"
    carry a keyset cursor; the page number they carry is only for display."""

    mailing: Mailing
    attempts: list[DeliveryAttempt]
    status: str | None
    page: int
    total: int  # counted up to count_cap + 1
    count_cap: int
    newest: dict[str, str] | None
    newer: dict[str, str] | None
    older: dict[str, str] | None

    @property
    def capped(self) -> bool:
        return self.total > self.count_cap

    @property
    def pages(self) -> int | None:
        return None if self.capped else max(1, math.ceil(self.total / LOG_PAGE))


def attempts_page(
    *,
    session: Session,
    actor: User,
    mailing_id: int,
    status: str | None = None,
    page: int = 1,
    before: str = "",
    after: str = "",
    count_cap: int = LOG_COUNT_CAP,
) -> AttemptsPage:
    """The log page a link asks for: `before` (older than a cursor), `after` (newer than
    one), or a bare page number, counted by offset (from a typed or old link)."""
    mailing = get_mailing(session=session, actor=actor, mailing_id=mailing_id)
    older_than = parse_cursor(before)
    newer_than = None if older_than else parse_cursor(after)
    total = count_attempts(
        session=session, actor=actor, mailing_id=mailing_id, status=status, cap=count_cap
    )
    rows = list(
        list_attempts(
            session=session,
            actor=actor,
            mailing_id=mailing_id,
            status=status,
            limit=LOG_PAGE + 1,  # one more tells whether the next page exists
            offset=(page - 1) * LOG_PAGE,
            older_than=older_than,
            newer_than=newer_than,
        )
    )
    extra = len(rows) > LOG_PAGE
    if newer_than is not None:
        # Fetched upwards from the cursor: the extra row is the newest one, in front.
        rows = rows[1:] if extra else rows
        has_older, at_newest = True, not extra
    else:
        rows = rows[:LOG_PAGE]
        has_older, at_newest = extra, page == 1
    if at_newest:
        page = 1  # back at the newest rows: the page count restarts there
    params = {"status": status} if status else {}
    return AttemptsPage(
        mailing=mailing,
        attempts=rows,
        status=status,
        page=page,
        total=total,
        count_cap=count_cap,
        newest={**params} if page > 1 else None,
        newer={**params, "after": cursor_of(rows[0]), "page": str(page - 1)}
        if rows and page > 1
        else None,
        older={**params, "before": cursor_of(rows[-1]), "page": str(page + 1)}
        if rows and has_older
        else None,
    )


@dataclass(frozen=True)
class RunRow:
    run: MailingRun
    counts: dict[str, int]  # ledger rows per state

    @property
    def open(self) -> int:
        """Rows a sender has still to settle."""
        return sum(self.counts.get(s, 0) for s in OPEN)


def list_runs(*, session: Session, actor: User, mailing_id: int, limit: int = 20) -> list[RunRow]:
    """The latest runs of a mailing with their ledger rows per state."""
    get_mailing(session=session, actor=actor, mailing_id=mailing_id)
    latest = session.exec(
        select(MailingRun)
        .where(MailingRun.mailing_id == mailing_id)
        .order_by(col(MailingRun.id).desc())
        .limit(limit)
    ).all()
    ids = [r.id for r in latest if r.id is not None]
    counts: dict[int, dict[str, int]] = {i: {} for i in ids}
    if ids:
        for run_id, state, n in session.exec(
            select(Delivery.run_id, Delivery.state, func.count())
            .where(Delivery.mailing_id == mailing_id, col(Delivery.run_id).in_(ids))
            .group_by(col(Delivery.run_id), col(Delivery.state))
        ).all():
            counts[run_id][state] = n
    return [RunRow(run=r, counts=counts.get(r.id or 0, {})) for r in latest]


def count_attempts(
    *,
    session: Session,
    actor: User,
    mailing_id: int,
    status: str | None = None,
    cap: int | None = None,
) -> int:
    """How many attempts; with `cap`, counting stops after cap + 1 rows, so a page that only
    shows "more than N" costs the same at a thousand rows as at a million."""
    get_mailing(session=session, actor=actor, mailing_id=mailing_id)
    rows = select(DeliveryAttempt.id).where(DeliveryAttempt.mailing_id == mailing_id)
    if (wanted := _status(status)) is not None:
        rows = rows.where(DeliveryAttempt.status == wanted)
    if cap is not None:
        rows = rows.limit(cap + 1)
    return session.exec(select(func.count()).select_from(rows.subquery())).one()


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
    # The server whose full quota the last pass paused for, and when its window opens.
    quota_server: str | None = None
    quota_until: datetime | None = None

    def waiting(self, tz: str) -> str | None:
        return quota_note(self.quota_server, self.quota_until, tz)

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
    # The error that still matters: of a recipient not delivered (yet). A deferral that a
    # later retry got through, or a skip, is history, not something to warn the owner about.
    troubled = (FAILED, DEFERRED, UNKNOWN)
    last_error = session.exec(
        select(DeliveryAttempt)
        .join(Delivery, col(Delivery.id) == DeliveryAttempt.delivery_id)
        .where(
            DeliveryAttempt.mailing_id == mailing_id,
            col(DeliveryAttempt.status).in_(troubled),
            col(Delivery.state).in_(troubled),
        )
        .order_by(col(DeliveryAttempt.id).desc())
        .limit(1)
    ).first()
    runs = session.exec(
        select(func.count()).select_from(MailingRun).where(MailingRun.mailing_id == mailing_id)
    ).one()
    decided = sum(counts[s] for s in DECIDED)
    return Report(
        mailing_id=mailing_id,
        counts=counts,
        attempts=attempts,
        runs=runs,
        success_rate=round(counts[SENT] / decided, 4) if decided else None,
        last_attempt_at=last_at,
        last_error=(mailing.last_error or (last_error.response if last_error else None)),
        last_error_at=last_error.attempted_at if last_error else None,
        quota_server=mailing.quota_server,
        quota_until=mailing.quota_until,
    )


STREAM_BATCH = 1000
ATTEMPT_COLUMNS = ("id", "attempted_at", "run_id", "email", "status", "smtp_code", "response")


def iter_attempts(
    *,
    session: Session,
    actor: User,
    mailing_id: int,
    status: str | None = None,
    limit: int | None = None,
    newest_first: bool = True,
) -> Iterator[Row[Any]]:
    """Attempts of the log as rows of ATTEMPT_COLUMNS (attribute access, like the model), in
    the order of `list_attempts`, fetched STREAM_BATCH at a time (a server-side cursor on
    PostgreSQL) and never all held: for exports of any size. Access and the status are
    checked at once; the session must stay open until the last row."""
    get_mailing(session=session, actor=actor, mailing_id=mailing_id)
    a = DeliveryAttempt
    stmt = select(*(getattr(a, name) for name in ATTEMPT_COLUMNS)).where(a.mailing_id == mailing_id)
    if (wanted := _status(status)) is not None:
        stmt = stmt.where(a.status == wanted)
    if newest_first:
        stmt = stmt.order_by(col(a.attempted_at).desc(), col(a.id).desc())
    else:
        stmt = stmt.order_by(col(a.attempted_at), col(a.id))
    if limit is not None:
        stmt = stmt.limit(limit)
    return iter(session.execute(stmt.execution_options(yield_per=STREAM_BATCH)))


def attempts_csv(*, session: Session, actor: User, mailing_id: int) -> str:
    """The whole log as one CSV string (tests, small logs); `iter_attempts_csv` streams it."""
    return "".join(iter_attempts_csv(session=session, actor=actor, mailing_id=mailing_id))


def iter_attempts_csv(*, session: Session, actor: User, mailing_id: int) -> CsvStream:
    """Every attempt as CSV, oldest first, in pieces; a mail server's reply is text from
    outside, neutralised too. Then the bounces and complaints that came back later."""
    rows = iter_attempts(session=session, actor=actor, mailing_id=mailing_id, newest_first=False)
    attempts = (
        (
            a.attempted_at.isoformat(),
            a.run_id,
            a.email,
            a.status,
            a.smtp_code or "",
            a.response or "",
        )
        for a in rows
    )

    def bounces() -> Iterator[tuple[object, ...]]:
        # Read once the attempts are written, not before the first piece.
        yield from bounce_csv_rows(session=session, actor=actor, mailing_id=mailing_id)

    return CsvStream(
        ("attempted_at", "run_id", "email", "status", "smtp_code", "response"),
        chain(attempts, bounces()),
    )


def requeue(*, session: Session, actor: User, mailing_id: int, unknown: bool = False) -> int:
    """Deferred rows become due now; with `unknown`, the operator accepts a possible duplicate."""
    require_sendable(session=session, actor=actor, mailing_id=mailing_id)
    states = [DEFERRED] + ([UNKNOWN] if unknown else [])
    result = session.execute(
        update(Delivery)
        .where(col(Delivery.mailing_id) == mailing_id, col(Delivery.state).in_(states))
        .values(state=PENDING, next_attempt_at=None)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)


def outcome_series(
    *, session: Session, actor: User, mailing_id: int
) -> list[tuple[str, dict[str, int]]]:
    """Attempts per status per hour (per day past two days), counted by the database."""
    get_mailing(session=session, actor=actor, mailing_id=mailing_id)
    where = col(DeliveryAttempt.mailing_id) == mailing_id
    bounds = session.exec(
        select(
            func.min(DeliveryAttempt.attempted_at), func.max(DeliveryAttempt.attempted_at)
        ).where(where)
    ).one()
    # MIN and MAX over no rows are NULL: a mailing without attempts has no bounds.
    first, last = cast(tuple[datetime | None, datetime | None], tuple(bounds))
    if first is None or last is None:
        return []
    daily = last - first > timedelta(days=2)
    at = DeliveryAttempt.attempted_at
    if session.get_bind().dialect.name == "sqlite":
        bucket = func.strftime("%Y-%m-%d" if daily else "%Y-%m-%d %H:00", at)
    else:
        bucket = func.to_char(
            func.date_trunc("day" if daily else "hour", func.timezone("UTC", at)),
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
