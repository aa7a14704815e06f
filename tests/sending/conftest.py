"""Delivery fixtures: a real aiosmtpd sink, SMTP settings, a mailing ready to send."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from mailctl.config import Settings, load_settings
from mailctl.db import session_scope, utcnow
from mailctl.models import Delivery, DeliveryAttempt, Mailing, User
from mailctl.schedule import Clock
from mailctl.services.clients import add_client
from mailctl.services.mailings import add_mailing
from mailctl.services.messages import add_message

# The clock every call here runs on: UTC wall time, real periods.
CLOCK = Clock(tz="UTC", period_seconds=None)

SUBJECT = "Hello {{ client.full_name }}"
BODY = "Dear {{ client.first_name }},\nyour address is {{ client.email }}.\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Envelope:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes


@dataclass
class Collector:
    """An aiosmtpd handler keeping every accepted message (optionally slowly)."""

    delay: float = 0.0
    envelopes: list[Envelope] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            import asyncio

            await asyncio.sleep(self.delay)
        with self.lock:
            self.envelopes.append(
                Envelope(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content))
            )
        return "250 2.0.0 OK queued"

    def rcpts(self) -> list[str]:
        with self.lock:
            return [r for e in self.envelopes for r in e.rcpt_tos]


@dataclass
class Sink:
    host: str
    port: int
    handler: Collector


@pytest.fixture
def sink() -> Iterator[Sink]:
    from aiosmtpd.controller import Controller

    handler = Collector()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, ready_timeout=5)
    controller.start()
    try:
        yield Sink("127.0.0.1", port, handler)
    finally:
        controller.stop()


@pytest.fixture
def smtp_settings(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Settings]:
    """Point mailctl at an SMTP server on 127.0.0.1 with short timeouts; returns Settings."""

    def configure(port: int, **extra: object) -> Settings:
        env = {
            "DELIVERY_TRANSPORT": "smtp",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": port,
            "SMTP_TIMEOUT": 1,
            "DELIVERY_ATTEMPT_DEADLINE_SECONDS": 3,
            "DELIVERY_RETRY_FIRST_SECONDS": 0,
            "DELIVERY_FROM_ADDRESS": "news@example.org",
            "DELIVERY_FROM_NAME": "Example News",
            "WEB_BASE_URL": "https://mail.example.org",
        }
        env.update({k.upper(): v for k, v in extra.items()})
        for key, value in env.items():
            monkeypatch.setenv(f"MAILCTL_{key}", str(value))
        return load_settings()

    return configure


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


def states(engine: Engine, mailing_id: int) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(Delivery.email, Delivery.state).where(Delivery.mailing_id == mailing_id)
        ).all()
    return {email: state for email, state in rows}


def ledger(engine: Engine, mailing_id: int) -> dict[str, Any]:
    """email -> the ledger row (as a mapping)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(Delivery.__table__).where(Delivery.mailing_id == mailing_id)  # type: ignore[attr-defined]
        ).mappings()
        return {r["email"]: dict(r) for r in rows}


def attempts(engine: Engine, mailing_id: int) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(DeliveryAttempt.__table__)  # type: ignore[attr-defined]
            .where(DeliveryAttempt.mailing_id == mailing_id)
            .order_by(DeliveryAttempt.id)  # type: ignore[arg-type]
        ).mappings()
        return [dict(r) for r in rows]


def attempt_count(engine: Engine, mailing_id: int) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(DeliveryAttempt)
                .where(DeliveryAttempt.mailing_id == mailing_id)
            ).scalar_one()
        )


def mailing_error(engine: Engine, mailing_id: int) -> str | None:
    with engine.connect() as conn:
        return conn.execute(select(Mailing.last_error).where(Mailing.id == mailing_id)).scalar_one()
