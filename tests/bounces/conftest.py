"""Bounce fixtures: the delivery tests' owner and mailings, and helpers that send a run."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.engine import Engine

from mailctl.config import Settings
from mailctl.schedule import Clock
from tests.sending.conftest import make_mailing, owner  # noqa: F401 (fixtures used here)


@pytest.fixture
def remail(engine: Engine, owner) -> Callable[[list[str]], int]:  # noqa: F811 (the fixture)
    """remail(emails): one more mailing, due now, to clients the owner has already."""
    from sqlmodel import select

    from mailctl.db import session_scope, utcnow
    from mailctl.models import Client, User
    from mailctl.services.mailings import add_mailing
    from mailctl.services.messages import add_message
    from tests.sending.conftest import CLOCK

    def make(emails: list[str]) -> int:
        with session_scope(engine) as session:
            actor = session.get(User, owner.id)
            assert actor is not None
            ids = [
                c.id
                for c in session.exec(select(Client).where(Client.owner_id == owner.id)).all()
                if c.email in emails and c.id is not None
            ]
            message = add_message(
                session=session, actor=actor, subject="Again", body="Hi", format="text"
            )
            mailing = add_mailing(
                session=session,
                actor=actor,
                message_id=message.id or 0,
                start=utcnow(),
                client_ids=ids,
                clock=CLOCK,
            )
            return mailing.id or 0

    return make


@pytest.fixture
def send_all(engine: Engine) -> Callable[[Settings], int]:
    """send(settings): one pass of everything due; the number sent."""
    from mailctl.services.delivery import run_pass

    def send(settings: Settings) -> int:
        summary = run_pass(
            engine=engine, settings=settings, clock=Clock.from_settings(settings), worker="test"
        )
        return summary.sent

    return send


from tests.support.dovecot import dovecot  # noqa: E402, F401 (a fixture: the bounce mailbox)
