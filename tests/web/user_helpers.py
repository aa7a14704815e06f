"""What the user-page tests share: a world of accounts per role, each logged in by the form."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from starlette.testclient import TestClient

from mailctl.db import session_scope, utcnow
from mailctl.models import Client, Mailing, MailingClient, Message, User

from .conftest import PASSWORD, logged_in

ROLES = ("owner", "other", "manager", "editor", "admin", "blocked", "anonymous")
_ROLE = {
    "owner": "user",
    "other": "user",
    "manager": "manager",
    "editor": "editor",
    "admin": "admin",
    "blocked": "user",
}


@dataclass
class World:
    users: dict[str, User] = field(default_factory=dict)
    client_id: int = 0  # the owner's
    message_id: int = 0  # the owner's, not used by a mailing
    used_message_id: int = 0  # the owner's, used by the mailing
    mailing_id: int = 0  # the owner's, starts tomorrow
    other_client_id: int = 0
    other_message_id: int = 0
    other_mailing_id: int = 0


@functools.cache
def password_hash() -> str:
    """One argon2 hash for every world user: hashing is deliberately slow."""
    from mailctl.services.users import hash_password

    return hash_password(PASSWORD)


@pytest.fixture(name="world")
def world_fixture(engine: Engine) -> World:
    """Committed rows: one account per role; the owner and the other user own a client, a free
    message, and a weekly mailing (with a second message) that starts tomorrow."""
    w = World()
    start = utcnow() + timedelta(days=1)
    with session_scope(engine) as s:
        for name, role in _ROLE.items():
            user = User(
                email=f"{name}@example.com",
                full_name=name.title(),
                role=role,
                is_active=name != "blocked",
                is_verified=True,
                password_hash=password_hash(),
            )
            s.add(user)
            s.flush()
            w.users[name] = user
        for name in ("owner", "other"):
            owner_id = w.users[name].id
            assert owner_id is not None
            client = Client(
                owner_id=owner_id,
                email=f"client-of-{name}@example.com",
                email_key=f"client-of-{name}@example.com",
                full_name=f"Client of {name}",
            )
            free = Message(
                owner_id=owner_id, subject=f"Free {name}", body="Hi {{ client.full_name }}"
            )
            used = Message(
                owner_id=owner_id, subject=f"Used {name}", body="News, {{ client.email }}"
            )
            s.add_all([client, free, used])
            s.flush()
            mailing = Mailing(
                owner_id=owner_id,
                message_id=used.id or 0,
                start_at=start,
                next_run_at=start,
                every="week",
            )
            s.add(mailing)
            s.flush()
            s.add(MailingClient(mailing_id=mailing.id or 0, client_id=client.id or 0))
            if name == "owner":
                w.client_id, w.message_id = client.id or 0, free.id or 0
                w.used_message_id, w.mailing_id = used.id or 0, mailing.id or 0
            else:
                w.other_client_id, w.other_message_id = client.id or 0, free.id or 0
                w.other_mailing_id = mailing.id or 0
    return w


def as_role(client: TestClient, world: World, role: str) -> TestClient:
    """The client logged in as the world's `role` (a fresh session; none for anonymous)."""
    client.cookies.clear()
    if role == "anonymous":
        return client
    if role == "blocked":
        # Logged in while active, then blocked: the open session must stop working.
        with session_scope(client.app.state.engine) as s:  # type: ignore[attr-defined]
            user = s.get(User, world.users["blocked"].id)
            assert user is not None
            user.is_active = True
            s.add(user)
        logged_in(client, "blocked@example.com")
        with session_scope(client.app.state.engine) as s:  # type: ignore[attr-defined]
            user = s.get(User, world.users["blocked"].id)
            assert user is not None
            user.is_active = False
            s.add(user)
        return client
    logged_in(client, f"{role}@example.com")
    return client


def wait_for(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll until check() is truthy: the background sender runs on its own thread."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


TABLES = ("clients", "messages", "mailings", "mailing_clients", "mailing_runs", "deliveries")


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the tables the user pages change, to prove a refused request changed none."""
    from sqlalchemy import text

    with engine.connect() as conn:
        return {
            t: sorted(tuple(r) for r in conn.execute(text(f"SELECT * FROM {t}")).all())  # noqa: S608
            for t in TABLES
        }
