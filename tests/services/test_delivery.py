"""The delivery use case every adapter calls: a pass, "send now" and "send if due"."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from mailctl.db import session_scope, utcnow
from mailctl.errors import NotFound
from mailctl.models import Mailing
from mailctl.schedule import Clock
from mailctl.services import delivery, mailings
from tests.support.world import World

CLOCK = Clock(tz="Europe/Berlin", period_seconds=None)


def _mailing(engine: Engine, world: World, *, start_in: timedelta) -> Mailing:
    with session_scope(engine) as session:
        return mailings.add_mailing(
            session=session,
            actor=world.users["owner"],
            message_id=world.messages["owner"],
            client_ids=[world.clients["owner"]],
            start=utcnow() + start_in,
            clock=CLOCK,
        )


def _outbox(settings: Any) -> list[Path]:
    folder = Path(settings.delivery.outbox_dir)
    return sorted(folder.glob("*.eml")) if folder.exists() else []


class _Recorder:
    def __init__(self) -> None:
        self.totals: list[int] = []
        self.outcomes: list[str] = []

    def begin(self, total: int) -> None:
        self.totals.append(total)

    def advance(self, status: str) -> None:
        self.outcomes.append(status)


def test_a_due_mailing_is_sent_at_once(engine: Engine, world: World, settings: Any) -> None:
    mailing = _mailing(engine, world, start_in=timedelta(0))
    bar = _Recorder()
    summary = delivery.send_if_due(
        engine=engine, settings=settings, clock=CLOCK, mailing=mailing, worker="t", progress=bar
    )
    assert summary is not None
    assert (summary.runs_started, summary.sent) == (1, 1)
    assert bar.totals == [1] and bar.outcomes == ["sent"]
    assert len(_outbox(settings)) == 1


def test_a_mailing_starting_later_waits(engine: Engine, world: World, settings: Any) -> None:
    mailing = _mailing(engine, world, start_in=timedelta(hours=2))
    summary = delivery.send_if_due(
        engine=engine, settings=settings, clock=CLOCK, mailing=mailing, worker="t"
    )
    assert summary is None and _outbox(settings) == []
    # "Send now" brings it forward (the run starts there): the client is sent once, and
    # nothing is left due.
    summary = delivery.send_now(
        engine=engine,
        settings=settings,
        clock=CLOCK,
        actor=world.users["owner"],
        mailing_id=mailing.id or 0,
        worker="t",
    )
    assert summary.sent == 1
    again = delivery.run_pass(engine=engine, settings=settings, clock=CLOCK, worker="t")
    assert (again.runs_started, again.sent) == (0, 0)
    assert len(_outbox(settings)) == 1


def test_send_now_checks_the_actor_before_anything_goes(
    engine: Engine, world: World, settings: Any
) -> None:
    mailing = _mailing(engine, world, start_in=timedelta(hours=2))
    with pytest.raises(NotFound):
        delivery.send_now(
            engine=engine,
            settings=settings,
            clock=CLOCK,
            actor=world.users["other"],
            mailing_id=mailing.id or 0,
            worker="t",
        )
    assert _outbox(settings) == []
    assert delivery.next_due(engine) == mailing.next_run_at
