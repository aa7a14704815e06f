"""One populated World for the tests of services, the panel and the scheduler.

An account per role, each owning a client, a free message and a daily mailing (with a second
message) that starts tomorrow; a blog post by the editor. Rows are inserted directly, so that
even managers, editors and the blocked user own objects (the services would refuse to create
them). `world.mailing(n)` adds a mailing of the owner's over n new clients, for delivery tests.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

from mailctl.db import session_scope, utcnow
from mailctl.models import BlogPost, Client, Mailing, MailingClient, Message, User
from mailctl.schedule import Clock
from mailctl.services.mailings import add_mailing
from mailctl.services.messages import add_message

# "owner" and "other" are both plain users; "subject" is a plain user who has not confirmed
# the address, and whom the user-management operations act on.
ROLE_OF = {
    "owner": "user",
    "other": "user",
    "manager": "manager",
    "editor": "editor",
    "admin": "admin",
    "blocked": "user",
    "subject": "user",
}
ACTORS = ("owner", "other", "manager", "editor", "admin", "blocked")  # of the access matrix


@dataclass
class World:
    engine: Engine
    start: datetime  # when every role's mailing starts
    users: dict[str, User] = field(default_factory=dict)  # email: "<role>@example.com"
    clients: dict[str, int] = field(default_factory=dict)  # each role's own client
    messages: dict[str, int] = field(default_factory=dict)  # each role's own, unused message
    mailing_messages: dict[str, int] = field(default_factory=dict)  # the one its mailing uses
    mailings: dict[str, int] = field(default_factory=dict)
    post: int = 0

    def mailing(
        self,
        clients: int,
        *,
        start: datetime | None = None,
        every: str = "once",
        end: datetime | None = None,
        clock: Clock = Clock(tz="Europe/Berlin", period_seconds=None),
    ) -> tuple[int, list[str]]:
        """A mailing of the owner's over `clients` new clients (inserted in bulk), due at
        `start` (now by default); returns (id, their emails)."""
        with session_scope(self.engine) as session:
            actor = session.get(User, self.users["owner"].id)
            assert actor is not None and actor.id is not None
            base = session.execute(select(func.count()).select_from(Client)).scalar_one()
            emails = [f"c{base + i:05d}@example.com" for i in range(clients)]
            rows = [
                Client(owner_id=actor.id, email=e, email_key=e, full_name=f"Client {e[:6]}")
                for e in emails
            ]
            session.add_all(rows)
            session.flush()
            message = add_message(
                session=session, actor=actor, subject="Hi {{ client.full_name }}", body="Hello."
            )
            mailing = add_mailing(
                session=session,
                actor=actor,
                message_id=message.id or 0,
                start=start or utcnow(),
                end=end,
                every=every,
                client_ids=[r.id for r in rows if r.id is not None],
                clock=clock,
            )
            return mailing.id or 0, emails

    def pause_own_mailings(self) -> None:
        """Disable the roles' mailings, for tests about what the scheduler sees coming."""
        with self.engine.begin() as conn:
            conn.execute(
                Mailing.__table__.update()  # type: ignore[attr-defined]
                .where(Mailing.id.in_(list(self.mailings.values())))  # type: ignore[union-attr]
                .values(is_enabled=False)
            )


@pytest.fixture
def world(engine: Engine, password_hash: str) -> World:
    w = World(engine=engine, start=utcnow() + timedelta(days=1))
    with session_scope(engine) as s:
        for name, role in ROLE_OF.items():
            user = User(
                email=f"{name}@example.com",
                full_name=name.title(),
                role=role,
                is_active=name != "blocked",
                is_verified=name != "subject",
                password_hash=password_hash,
            )
            s.add(user)
            s.flush()
            w.users[name] = user
            assert user.id is not None
            client = Client(
                owner_id=user.id,
                email=f"client-of-{name}@example.com",
                email_key=f"client-of-{name}@example.com",
                full_name=f"Client of {name}",
            )
            message = Message(
                owner_id=user.id, subject=f"Free {name}", body="Hi {{ client.full_name }}"
            )
            used = Message(
                owner_id=user.id, subject=f"Used {name}", body="News for {{ client.email }}"
            )
            s.add_all([client, message, used])
            s.flush()
            assert client.id and message.id and used.id
            w.clients[name], w.messages[name], w.mailing_messages[name] = (
                client.id,
                message.id,
                used.id,
            )
            mailing = Mailing(
                owner_id=user.id,
                message_id=used.id,
                every="day",
                start_at=w.start,
                next_run_at=w.start,
            )
            s.add(mailing)
            s.flush()
            assert mailing.id is not None
            s.add(MailingClient(mailing_id=mailing.id, client_id=client.id))
            w.mailings[name] = mailing.id
        post = BlogPost(author_id=w.users["editor"].id, title="Hello", content="First post")
        s.add(post)
        s.flush()
        assert post.id is not None
        w.post = post.id
    return w


def snapshot(session: Session) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table as this session sees it (pending changes are flushed first)."""
    session.flush()
    out = {}
    for table in SQLModel.metadata.sorted_tables:
        rows = session.connection().execute(sa_select(table)).all()
        out[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return out


def table_snapshot(
    engine: Engine, tables: Collection[str] | None = None
) -> dict[str, list[tuple[Any, ...]]]:
    """Every committed row of these tables (default: all): equal before and after a refused
    request."""
    with engine.connect() as conn:
        return {
            table.name: sorted((tuple(r) for r in conn.execute(sa_select(table)).all()), key=repr)
            for table in SQLModel.metadata.sorted_tables
            if tables is None or table.name in tables
        }


@pytest.fixture
def refuse(session: Session) -> Callable[..., Exception]:
    """`refuse(Invalid, lambda: call(...), match=...)`: the call fails and changes nothing."""

    def check(kind: type[Exception], call: Any, match: str | None = None) -> Exception:
        before = snapshot(session)
        with pytest.raises(kind, match=match) as info:
            call()
        assert snapshot(session) == before
        return info.value

    return check
