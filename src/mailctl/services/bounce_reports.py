"""Bounces and complaints in reports: per mailing and per run, counts and rates, and the
chart's series. Rates are of the messages sent (a bounced message was sent first).

The ledger row holds the strongest thing said about its message (deliveries.bounce), so a
message bounced softly twice and then hard counts once, as hard; the chart counts reports
(the bounces table), when they came in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from mailctl.models import Bounce, BounceKind, Delivery, User
from mailctl.models.delivery import SENT
from mailctl.services.mailings import get_mailing

# The chart's names for them (web/chart.py colours these).
SERIES_NAMES = {
    BounceKind.hard.value: "bounced",
    BounceKind.soft.value: "bounced",
    BounceKind.complaint.value: "complained",
}


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass(frozen=True)
class BounceCounts:
    sent: int = 0  # ledger rows in `sent`: what the rates are of
    hard: int = 0
    soft: int = 0
    complaints: int = 0

    @property
    def bounced(self) -> int:
        return self.hard + self.soft

    @property
    def bounce_rate(self) -> float | None:
        return _rate(self.bounced, self.sent)

    @property
    def complaint_rate(self) -> float | None:
        return _rate(self.complaints, self.sent)

    def as_dict(self) -> dict[str, object]:
        return {
            "bounced": self.bounced,
            "bounced_hard": self.hard,
            "bounced_soft": self.soft,
            "complaints": self.complaints,
            "bounce_rate": self.bounce_rate,
            "complaint_rate": self.complaint_rate,
        }


def _counts(rows: Sequence[tuple[str | None, int]], sent: int) -> BounceCounts:
    by_kind = {kind: n for kind, n in rows if kind}
    return BounceCounts(
        sent=sent,
        hard=by_kind.get(BounceKind.hard.value, 0),
        soft=by_kind.get(BounceKind.soft.value, 0),
        complaints=by_kind.get(BounceKind.complaint.value, 0),
    )


def run_bounces(
    *, session: Session, actor: User, mailing_id: int, run_ids: Sequence[int] | None = None
) -> dict[int, BounceCounts]:
    """Per run of one mailing (those given, or all): sent, bounced and complained about."""
    get_mailing(session=session, actor=actor, mailing_id=mailing_id)
    where = [col(Delivery.mailing_id) == mailing_id, col(Delivery.state) == SENT]
    if run_ids is not None:
        if not run_ids:
            return {}
        where.append(col(Delivery.run_id).in_(run_ids))
    found: dict[int, tuple[int, list[tuple[str | None, int]]]] = {}
    for run_id, kind, n in session.exec(
        select(Delivery.run_id, Delivery.bounce, func.count())
        .where(*where)
        .group_by(col(Delivery.run_id), col(Delivery.bounce))
    ).all():
        sent, kinds = found.get(run_id, (0, []))
        kinds.append((kind, n))
        found[run_id] = (sent + n, kinds)
    return {run: _counts(kinds, sent) for run, (sent, kinds) in found.items()}


def mailing_bounces(*, session: Session, actor: User, mailing_id: int) -> BounceCounts:
    """The whole mailing's counts and rates, every run together."""
    runs = run_bounces(session=session, actor=actor, mailing_id=mailing_id)
    return BounceCounts(
        sent=sum(r.sent for r in runs.values()),
        hard=sum(r.hard for r in runs.values()),
        soft=sum(r.soft for r in runs.values()),
        complaints=sum(r.complaints for r in runs.values()),
    )


def with_bounces(
    *, session: Session, actor: User, mailing_id: int, series: list[tuple[str, dict[str, int]]]
) -> list[tuple[str, dict[str, int]]]:
    """The outcome series (reports.outcome_series) with bounce and complaint reports in the
    same buckets (hourly "YYYY-MM-DD HH:00" UTC, or daily when its labels are days)."""
    get_mailing(session=session, actor=actor, mailing_id=mailing_id)
    rows = session.exec(
        select(Bounce.received_at, Bounce.kind).where(col(Bounce.mailing_id) == mailing_id)
    ).all()
    if not rows:
        return series
    daily = bool(series) and len(series[0][0]) == 10
    merged: dict[str, dict[str, int]] = {label: dict(counts) for label, counts in series}
    for received_at, kind in rows:
        label = _bucket(received_at, daily=daily)
        counts = merged.setdefault(label, {})
        name = SERIES_NAMES[kind]
        counts[name] = counts.get(name, 0) + 1
    return sorted(merged.items())


def _bucket(at: datetime, *, daily: bool) -> str:
    at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%d" if daily else "%Y-%m-%d %H:00")


def bounce_csv_rows(
    *, session: Session, actor: User, mailing_id: int
) -> list[tuple[str, int | str, str, str, str, str]]:
    """The bounce and complaint reports of a mailing as rows of the attempts CSV (after the
    attempts): received_at, run_id, email, status bounce-hard/bounce-soft/complaint, no SMTP
    code, the report's status code and diagnostic."""
    get_mailing(session=session, actor=actor, mailing_id=mailing_id)
    rows = session.exec(
        select(Bounce, Delivery.email)
        .join(Delivery, col(Delivery.id) == Bounce.delivery_id)
        .where(col(Bounce.mailing_id) == mailing_id)
        .order_by(col(Bounce.received_at), col(Bounce.id))
    ).all()
    return [
        (
            bounce.received_at.isoformat(),
            bounce.run_id or "",
            email,
            "complaint" if bounce.kind == BounceKind.complaint.value else f"bounce-{bounce.kind}",
            "",
            " ".join(p for p in (bounce.status, bounce.reason) if p),
        )
        for bounce, email in rows
    ]
