"""Delivery fixtures: the owner of the mailings, and a mailing ready to send."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy.engine import Engine

from mailctl.db import session_scope, utcnow
from mailctl.models import User
from mailctl.schedule import Clock
from mailctl.services.clients import add_client
from mailctl.services.mailings import add_mailing
from mailctl.services.messages import add_message
from tests.support.faultserver import FaultServer

# The clock every call here runs on: UTC wall time, real periods.
CLOCK = Clock(tz="UTC", period_seconds=None)

SUBJECT = "Hello {{ client.full_name }}"
BODY = "Dear {{ client.first_name }},\nyour address is {{ client.email }}.\n"


@pytest.fixture
def owner(make_user: Callable[..., User]) -> User:
    return make_user("user", email="owner@example.com")


@pytest.fixture
def make_mailing(engine: Engine, owner: User) -> Callable[..., int]:
    """A mailing due now over the given clients (emails or (email, name) pairs)."""

    def make(
        clients: list[str | tuple[str, str]],
        *,
        subject: str = SUBJECT,
        body: str = BODY,
        format: str = "text",  # these tests read the body as text/plain
        layout_id: int | None = None,
    ) -> int:
        with session_scope(engine) as session:
            actor = session.get(User, owner.id)
            assert actor is not None
            ids = []
            for item in clients:
                email, name = (item, "") if isinstance(item, str) else item
                ids.append(add_client(session=session, actor=actor, email=email, full_name=name).id)
            message = add_message(
                session=session,
                actor=actor,
                subject=subject,
                body=body,
                format=format,
                layout_id=layout_id,
            )
            mailing = add_mailing(
                session=session,
                actor=actor,
                message_id=message.id or 0,
                start=utcnow(),
                client_ids=[i for i in ids if i is not None],
                clock=CLOCK,
            )
            return mailing.id or 0

    return make


@pytest.fixture
def fault() -> Iterator[Callable[..., FaultServer]]:
    """Start a fault server for a scenario; every one started is stopped after the test."""
    servers: list[FaultServer] = []

    def start(scenario: str, **kwargs: object) -> FaultServer:
        drip = kwargs.pop("drip_interval", None)
        server = FaultServer(scenario, **kwargs)  # type: ignore[arg-type]
        if drip is not None:
            server.drip_interval = float(drip)  # type: ignore[arg-type]
        servers.append(server.start())
        return server

    yield start
    for server in servers:
        server.stop()
