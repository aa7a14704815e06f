"""One pass: start what is due, deliver what is claimable, settle runs and statuses.

`mailctl run-due`, each daemon tick, `mailctl mailing send` and the panel's "send now" all
run this, so they share one behaviour and the same database claims keep them apart.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy.engine import Engine

from mailctl.config import Settings
from mailctl.sending.engine import Sender, Summary
from mailctl.services.mailings import Clock
from mailctl.services.runs import close_runs, mailings_to_settle, start_due_runs


def clock_of(settings: Settings) -> Clock:
    return Clock(tz=settings.timezone, period_seconds=settings.test_period_seconds)


def run_pass(
    engine: Engine,
    settings: Settings,
    *,
    worker: str,
    mailing_id: int | None = None,
    stop: threading.Event | None = None,
    progress: Callable[[str], None] | None = None,
    sender: Sender | None = None,
) -> Summary:
    summary = Summary()
    started = start_due_runs(engine, clock=clock_of(settings), mailing_id=mailing_id)
    summary.runs_started = len(started)
    summary.runs.update(started)
    own_sender = sender is None
    sender = sender or Sender(engine, settings, worker=worker, stop=stop, progress=progress)
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
