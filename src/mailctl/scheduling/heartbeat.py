"""Heartbeats of schedulers, and the picture `mailctl status` draws from the tables.

A daemon upserts its `workers` row every tick and marks it `stopped` on a clean exit, so a
row still `running` whose `seen_at` is old belongs to a process that died or hangs.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func
from sqlalchemy.engine import Engine
from sqlmodel import select

from mailctl.db import session_scope, utcnow
from mailctl.models import Delivery, Mailing, Worker

RUNNING = "running"
STOPPED = "stopped"
# Rows of daemons that stopped (or died) this long ago are dropped when a daemon starts.
KEEP_FOR = timedelta(days=7)
WAITING_STATES = ("pending", "sending", "deferred", "unknown")


def stale_after(tick_seconds: float) -> timedelta:
    """A running daemon beats every tick; three missed beats (plus slack) mean trouble."""
    return timedelta(seconds=3 * tick_seconds + 10)


def beat(
    engine: Engine, *, worker: str, kind: str, state: str = RUNNING, now: datetime | None = None
) -> None:
    now = now or utcnow()
    with session_scope(engine) as session:
        row = session.get(Worker, worker)
        if row is None:
            row = Worker(
                id=worker,
                kind=kind,
                hostname=socket.gethostname()[:255],
                pid=os.getpid(),
                started_at=now,
                seen_at=now,
                state=state,
            )
        else:
            row.seen_at = now
            row.state = state
        session.add(row)


def prune(engine: Engine, *, kind: str, now: datetime | None = None) -> int:
    cutoff = (now or utcnow()) - KEEP_FOR
    with session_scope(engine) as session:
        result = session.execute(
            delete(Worker).where(Worker.kind == kind, Worker.seen_at < cutoff)  # type: ignore[arg-type]
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


def next_due(engine: Engine) -> datetime | None:
    """The earliest moment something becomes due: a run to start or a deferred retry."""
    with session_scope(engine, readonly=True) as session:
        run_at = session.execute(
            select(func.min(Mailing.next_run_at)).where(
                Mailing.is_enabled == True,  # noqa: E712
                Mailing.next_run_at.is_not(None),  # type: ignore[union-attr]
            )
        ).scalar_one()
        retry_at = session.execute(
            select(func.min(Delivery.next_attempt_at))
            .join(Mailing, Mailing.id == Delivery.mailing_id)  # type: ignore[arg-type]
            .where(
                Delivery.state == "deferred",
                Delivery.next_attempt_at.is_not(None),  # type: ignore[union-attr]
                Mailing.is_enabled == True,  # noqa: E712
            )
        ).scalar_one()
    times = [t for t in (run_at, retry_at) if t is not None]
    return min(times) if times else None


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
                "stale": w.state == RUNNING and now - w.seen_at > stale,
            }
            for w in session.execute(
                select(Worker).order_by(Worker.seen_at.desc()).limit(limit)  # type: ignore[attr-defined]
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
                    Mailing.next_run_at.is_not(None),  # type: ignore[union-attr]
                )
                .order_by(Mailing.next_run_at, Mailing.id)  # type: ignore[arg-type]
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
            .where(Delivery.state.in_(WAITING_STATES))  # type: ignore[attr-defined]
            .group_by(Delivery.mailing_id, Delivery.state)  # type: ignore[arg-type]
        ):
            row = per_mailing.setdefault(
                mailing_id,
                {
                    "mailing_id": mailing_id,
                    **dict.fromkeys(WAITING_STATES, 0),
                    "next_retry_at": None,
                },
            )
            row[state] = int(count)
            if state == "deferred":
                row["next_retry_at"] = retry_at
        # Why a mailing's last pass stopped early (the breaker, a refused login), if it did.
        if per_mailing:
            for mailing_id, error in session.execute(
                select(Mailing.id, Mailing.last_error).where(
                    Mailing.id.in_(per_mailing),  # type: ignore[union-attr]
                    Mailing.last_error.is_not(None),  # type: ignore[union-attr]
                )
            ):
                per_mailing[mailing_id]["last_error"] = error
    for row in per_mailing.values():
        row.setdefault("last_error", None)
    waiting = [per_mailing[k] for k in sorted(per_mailing)]
    totals = {s: sum(r[s] for r in waiting) for s in WAITING_STATES}
    return Status(now=now, workers=workers, next_runs=next_runs, waiting=waiting, totals=totals)
