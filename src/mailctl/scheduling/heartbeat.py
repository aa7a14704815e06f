"""Heartbeats of schedulers: a daemon upserts its `workers` row every tick and marks it
stopped on a clean exit (services/status.py reads them for `mailctl status`)."""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlmodel import col

from mailctl.db import rowcount, session_scope, utcnow
from mailctl.models import Worker, WorkerState

RUNNING = WorkerState.running.value
STOPPED = WorkerState.stopped.value
# Rows of daemons that stopped (or died) this long ago are dropped when a daemon starts.
KEEP_FOR = timedelta(days=7)


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
            delete(Worker).where(col(Worker.kind) == kind, col(Worker.seen_at) < cutoff)
        )
        return rowcount(result)
