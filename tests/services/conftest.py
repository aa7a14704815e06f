"""A small populated world for service tests: one account per role, each with its own objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

from mailctl.db import session_scope, utcnow
from mailctl.models import BlogPost, Client, Mailing, MailingClient, Message, User

PASSWORD = "correct horse battery"
# Roles of the access matrix; "owner" and "other" are both plain users, "subject" is a plain
# user that the user-management operations act on.
ACTORS = ("owner", "other", "manager", "editor", "admin", "blocked")
_ROLE = {
    "owner": "user",
    "other": "user",
    "manager": "manager",
    "editor": "editor",
    "admin": "admin",
    "blocked": "user",
    "subject": "user",
}


@pytest.fixture(scope="session")
def password_hash() -> str:
    """One argon2 hash for every world user: hashing is deliberately slow."""
    from mailctl.services.users import hash_password

    return hash_password(PASSWORD)


@dataclass
class World:
    users: dict[str, User] = field(default_factory=dict)
    clients: dict[str, int] = field(default_factory=dict)  # each role's own client
    messages: dict[str, int] = field(default_factory=dict)  # each role's own, unused message
    mailing_messages: dict[str, int] = field(default_factory=dict)  # the one its mailing uses
    mailings: dict[str, int] = field(default_factory=dict)
    post: int = 0


@pytest.fixture
def world(engine: Engine, password_hash: str) -> World:
    """Committed rows, inserted directly so that even managers, editors and the blocked user
    own a client and a message (the services would refuse to create them)."""
    w = World()
    start = utcnow() + timedelta(days=1)
    with session_scope(engine) as s:
        for name, role in _ROLE.items():
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
                owner_id=user.id, message_id=used.id, every="day", start_at=start, next_run_at=start
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


@pytest.fixture
def refuse(session: Session) -> Any:
    """`refuse(Invalid, lambda: call(...), match=...)`: the call fails and changes nothing."""

    def check(kind: type[Exception], call: Any, match: str | None = None) -> Exception:
        before = snapshot(session)
        with pytest.raises(kind, match=match) as info:
            call()
        assert snapshot(session) == before
        return info.value

    return check
