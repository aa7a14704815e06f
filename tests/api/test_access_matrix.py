"""Every API route x role: owner, other user, manager, editor, admin, blocked (a key made
before the block), no key, and the owner's read-only key.

The API goes through the same services as the panel, so the answers are the panel's matrix
in HTTP terms: another user's object is 404, a forbidden action 403, no valid key 401, a
read-only key's write 403. Every refused call leaves the database as it was. A test checks
that the table covers every operation of the OpenAPI document.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.testclient import TestClient

from mailctl.db import session_scope
from mailctl.services import suppressions
from mailctl.services.tagging import ensure_tags, link_tags
from mailctl.web.api import OPERATIONS
from tests.api.conftest import bearer
from tests.support.world import World, table_snapshot

ROLES = ("owner", "other", "manager", "editor", "admin", "blocked", "nokey", "readonly")
CONTENT = {"owner": 200, "other": 200, "manager": 403, "editor": 403, "admin": 200}
OWNED = {"owner": 200, "other": 404, "manager": 403, "editor": 403, "admin": 200}
OVERSEEN = {"owner": 200, "other": 404, "manager": 200, "editor": 403, "admin": 200}
# Tags and suppressions by name act on the caller's own list (an admin's too, as in the CLI).
BY_NAME = {"owner": 200, "other": 404, "manager": 403, "editor": 403, "admin": 404}
EDITORS = {"owner": 403, "other": 403, "manager": 403, "editor": 200, "admin": 200}
OVERSIGHT = {"owner": 403, "other": 403, "manager": 200, "editor": 403, "admin": 200}
EVERYONE = {"owner": 200, "other": 200, "manager": 200, "editor": 200, "admin": 200}


def ok(table: dict[str, int], status: int) -> dict[str, int]:
    """The table with the success status of this route (201, 202, 204) for those it lets."""
    return {role: status if code == 200 else code for role, code in table.items()}


Body = Callable[[World, str], Any]


@dataclass(frozen=True)
class Row:
    method: str
    path: str  # {client} {message} {mailing} {post} {subject}: the owner's objects
    expect: dict[str, int]
    body: Body | None = None


def _mailing_body(w: World, role: str) -> Any:
    # Each caller addresses its own message and client (another's would be 404 for a reason
    # the row is not about).
    return {"message_id": w.messages[role], "client_ids": [w.clients[role]], "start": "+1d"}


MATRIX = [
    Row("GET", "/me", EVERYONE),
    Row("GET", "/clients", CONTENT),
    Row("POST", "/clients", ok(CONTENT, 201), lambda w, r: {"email": "fresh@example.com"}),
    Row("POST", "/clients/import", CONTENT, lambda w, r: {"clients": [{"email": "i@example.com"}]}),
    Row("GET", "/clients/{client}", OWNED),
    Row("PATCH", "/clients/{client}", OWNED, lambda w, r: {"comment": "changed"}),
    Row("DELETE", "/clients/{client}", ok(OWNED, 204)),
    Row("GET", "/tags", CONTENT),
    Row("PUT", "/tags/news/public", BY_NAME, lambda w, r: {"public": True}),
    Row("DELETE", "/tags/news", ok(BY_NAME, 204)),
    Row("GET", "/messages", CONTENT),
    Row("POST", "/messages", ok(CONTENT, 201), lambda w, r: {"subject": "S", "body": "B"}),
    Row("GET", "/messages/{message}", OWNED),
    Row("PATCH", "/messages/{message}", OWNED, lambda w, r: {"subject": "Changed"}),
    Row("DELETE", "/messages/{message}", ok(OWNED, 204)),
    Row("GET", "/suppressions", CONTENT),
    Row("POST", "/suppressions", ok(CONTENT, 201), lambda w, r: {"email": "no@example.com"}),
    Row("POST", "/suppressions/gone@example.com/lift", BY_NAME, lambda w, r: {"note": "asked"}),
    Row("GET", "/posts", EDITORS),
    Row("POST", "/posts", ok(EDITORS, 201), lambda w, r: {"title": "T", "content": "C"}),
    Row("GET", "/posts/{post}", EDITORS),
    Row("PATCH", "/posts/{post}", EDITORS, lambda w, r: {"title": "Changed"}),
    Row("DELETE", "/posts/{post}", ok(EDITORS, 204)),
    Row("GET", "/mailings", {**CONTENT, "manager": 200}),
    Row("POST", "/mailings", ok(CONTENT, 201), _mailing_body),
    Row("GET", "/mailings/{mailing}", OVERSEEN),
    Row("PATCH", "/mailings/{mailing}", OWNED, lambda w, r: {"every": "week"}),
    Row("DELETE", "/mailings/{mailing}", ok(OWNED, 204)),
    Row("POST", "/mailings/{mailing}/enable", OVERSEEN),
    Row("POST", "/mailings/{mailing}/disable", OVERSEEN),
    Row("POST", "/mailings/{mailing}/send", ok(OWNED, 202)),
    Row("GET", "/mailings/{mailing}/runs", OVERSEEN),
    Row("GET", "/mailings/{mailing}/attempts", OVERSEEN),
    Row("GET", "/mailings/{mailing}/report", OVERSEEN),
    Row("GET", "/users", OVERSIGHT),
    Row("POST", "/users/{subject}/block", OVERSIGHT),
    Row("POST", "/users/{subject}/unblock", OVERSIGHT),
]


def _expected(row: Row, role: str) -> int:
    if role in ("blocked", "nokey"):
        return 401
    if role == "readonly":
        return 403 if row.method != "GET" else row.expect["owner"]
    return row.expect[role]


def _owner_extras(w: World, secret: str) -> None:
    """What the by-name rows need: the owner's tag `news` and a suppressed address."""
    with session_scope(w.engine) as s:
        owner = w.users["owner"].id or 0
        link_tags(s, w.clients["owner"], ensure_tags(s, owner, ["news"]))
        suppressions.suppress_address(
            s, owner_id=owner, email="gone@example.com", reason="manual", secret=secret
        )


def test_the_matrix_covers_every_operation() -> None:
    def shape(path: str) -> str:
        parts = [
            ("{}" if p.startswith("{") or p in ("news", "gone@example.com") else p)
            for p in path.split("/")
        ]
        return "/".join(parts)

    documented = {(op.method, shape(op.path)) for op in OPERATIONS}
    covered = {(row.method, shape(row.path)) for row in MATRIX}
    assert documented == covered


def _headers(world: World, make_key: Callable[..., str], role: str) -> dict[str, str]:
    if role == "nokey":
        return {}
    if role == "readonly":
        return bearer(make_key(world.users["owner"].id, "read"))
    return bearer(make_key(world.users[role].id))


def _call(client: TestClient, world: World, headers: dict[str, str], row: Row, role: str) -> Any:
    url = "/api/v1" + row.path.format(
        client=world.clients["owner"],
        message=world.messages["owner"],
        mailing=world.mailings["owner"],
        post=world.post,
        subject=world.users["subject"].id,
    )
    body = row.body(world, role if role in world.users else "owner") if row.body else None
    return client.request(row.method, url, json=body, headers=headers)


# A refusal changes nothing, so every refused role of a row shares one world; each role that
# succeeds gets its own (the owner's delete would leave the admin nothing to delete).
CASES = [
    pytest.param(row, roles, id=f"{row.method} {row.path} {'+'.join(roles)}")
    for row in MATRIX
    for roles in (
        tuple(r for r in ROLES if _expected(row, r) >= 400),
        *((r,) for r in ROLES if _expected(row, r) < 400),
    )
]


@pytest.mark.parametrize("row,roles", CASES)
def test_route_per_role(
    client: TestClient, world: World, make_key, settings, row: Row, roles: tuple[str, ...]
) -> None:  # type: ignore[no-untyped-def]
    _owner_extras(world, settings.web_secret_key())
    keys = {role: _headers(world, make_key, role) for role in roles}
    problems = []
    for role in roles:
        expected = _expected(row, role)
        before = table_snapshot(world.engine)
        response = _call(client, world, keys[role], row, role)
        if response.status_code != expected:
            problems.append(
                f"as {role}: {response.status_code}, expected {expected}: {response.text}"
            )
            continue
        if expected >= 400:
            assert response.headers["content-type"] == "application/problem+json"
            assert "client-of-owner" not in response.text
            after = table_snapshot(world.engine)
            # A key's first call notes when it was last used, refused or not.
            before.pop("api_keys"), after.pop("api_keys")
            if after != before:
                problems.append(f"as {role}: refused, but the database changed")
    assert not problems, f"{row.method} {row.path}\n" + "\n".join(problems)
