"""What `mailctl status` shows: senders' heartbeats, the next runs, the recipients waiting.

A daemon upserts its `workers` row every tick and marks it stopped on a clean exit, so a row
still running whose `seen_at` is old belongs to a process that died or hangs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from mailctl.db import session_scope, utcnow
from mailctl.models import Delivery, Mailing, Worker, WorkerState
from mailctl.models.delivery import DEFERRED, WAITING
from mailctl.timeutil import fmt


def quota_note(server: str | None, until: datetime | None, tz: str) -> str | None:
    """How a pass paused by a full quota is shown (status, mailing show and report, the
    panel): a state of its own, with the moment the server's window opens."""
    if server is None:
        return None
    return f"waiting for quota of {server}: resumes at {fmt(until, tz) if until else 'soon'}"


def stale_after(tick_seconds: float) -> timedelta:
    """A running daemon beats every tick; three missed beats (plus slack) mean trouble."""
    return timedelta(seconds=3 * tick_seconds + 10)


@dataclass(frozen=True)
class Status:
    now: datetime
    workers: list[dict[str, Any]]
    next_runs: list[dict[str, Any]]
    waiting: list[dict[str, Any]]
    totals: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {
            "now": self.now,
            "workers": self.workers,
            "next_runs": self.next_runs,
            "waiting": self.waiting,
            "totals": self.totals,
        }


def status(
    engine: Engine, *, tick_seconds: float, limit: int = 10, now: datetime | None = None
) -> Status:
    """Daemons' heartbeats, the next runs to start, and the recipients still waiting."""
    now = now or utcnow()
    stale = stale_after(tick_seconds)
    with session_scope(engine, readonly=True) as session:
        workers = [
            {
                "id": w.id,
                "kind": w.kind,
                "hostname": w.hostname,
                "pid": w.pid,
                "state": w.state,
                "started_at": w.started_at,
                "seen_at": w.seen_at,
                "stale": w.state == WorkerState.running and now - w.seen_at > stale,
            }
            for w in session.execute(
                select(Worker).order_by(col(Worker.seen_at).desc()).limit(limit)
            ).scalars()
        ]
        next_runs = [
            {
                "mailing_id": r.id,
                "next_run_at": r.next_run_at,
                "every": r.every,
                "overdue": r.next_run_at <= now,
            }
            for r in session.execute(
                select(Mailing.id, Mailing.next_run_at, Mailing.every)
                .where(
                    Mailing.is_enabled == True,  # noqa: E712
                    col(Mailing.next_run_at).is_not(None),
                )
                .order_by(col(Mailing.next_run_at), col(Mailing.id))
                .limit(limit)
            )
        ]
        per_mailing: dict[int, dict[str, Any]] = {}
        for mailing_id, state, count, retry_at in session.execute(
            select(
                Delivery.mailing_id,
                Delivery.state,
                func.count(),
                func.min(Delivery.next_attempt_at),
            )
            .where(col(Delivery.state).in_(WAITING))
            .group_by(col(Delivery.mailing_id), col(Delivery.state))
        ):
            row = per_mailing.setdefault(
                mailing_id,
                {
                    "mailing_id": mailing_id,
                    **dict.fromkeys(WAITING, 0),
                    "next_retry_at": None,
                },
            )
            row[state] = int(count)
            if state == DEFERRED:
                row["next_retry_at"] = retry_at
        # Why a mailing's last pass stopped early (the breaker, a refused login), if it did,
        # or the server whose quota it waits for (a state of its own, not an error).
        if per_mailing:
            for mailing_id, error, server, until in session.execute(
                select(
                    Mailing.id, Mailing.last_error, Mailing.quota_server, Mailing.quota_until
                ).where(
                    col(Mailing.id).in_(per_mailing),
                    or_(
                        col(Mailing.last_error).is_not(None),
                        col(Mailing.quota_server).is_not(None),
                    ),
                )
            ):
                per_mailing[mailing_id] |= {
                    "last_error": error,
                    "quota_server": server,
                    "quota_until": until,
                }
    for row in per_mailing.values():
        for key in ("last_error", "quota_server", "quota_until"):
            row.setdefault(key, None)
    waiting = [per_mailing[k] for k in sorted(per_mailing)]
    totals = {s: sum(r[s] for r in waiting) for s in WAITING}
    return Status(now=now, workers=workers, next_runs=next_runs, waiting=waiting, totals=totals)
