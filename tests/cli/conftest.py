"""CLI fixtures: a cast of users, a seeded account, and a snapshot of the whole database."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.cli import FUTURE, USER1, USER2, as_json, new_id


@pytest.fixture
def users(cli, make_user):  # type: ignore[no-untyped-def]
    """Two plain users, a manager, an editor and a blocked user (after `init` made the admin)."""
    return {
        "user1": make_user("user", email=USER1),
        "user2": make_user("user", email=USER2),
        "manager": make_user("manager", email="manager@example.com"),
        "editor": make_user("editor", email="editor@example.com"),
        "blocked": make_user("user", email="blocked@example.com", active=False),
    }


@pytest.fixture
def snapshot(cli):  # type: ignore[no-untyped-def]
    """Everything an admin can list, as JSON: equal before and after a refused command."""

    def take() -> dict[str, Any]:
        return {
            noun: as_json(cli(noun, "list", "--json"))
            for noun in ("client", "message", "mailing", "user", "blog")
        }

    return take


@pytest.fixture
def setup1(cli, users):  # type: ignore[no-untyped-def]
    """user1 with two clients, a message and a future weekly mailing to both."""
    c1 = new_id(cli("client", "add", "ann@example.com", "--name", "Ann Lee", as_=USER1))
    c2 = new_id(cli("client", "add", "bob@example.com", "--name", "Bob", as_=USER1))
    m = new_id(
        cli(
            "message",
            "add",
            "--subject",
            "Hi {{ client.first_name }}",
            "--body",
            "Hello",
            as_=USER1,
        )
    )
    ml = new_id(
        cli(
            "mailing",
            "add",
            "--message",
            m,
            "--all-clients",
            "--start",
            FUTURE,
            "--every",
            "week",
            as_=USER1,
        )
    )
    return {"clients": [c1, c2], "message": m, "mailing": ml}
