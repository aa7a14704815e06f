"""Every user-page route x role: owner, other user, manager, editor, admin, anonymous, blocked.

Another user's object is "not found" on every route and method; a manager's or an editor's
forbidden action is 403; anonymous and blocked sessions go to /login. A refused POST leaves
the database exactly as it was.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.engine import Engine
from starlette.testclient import TestClient

from mailctl.db import session_scope
from mailctl.models import Client, Mailing, Message
from tests.support.web import ROLES, as_role, post_form, state_of
from tests.support.world import World, table_snapshot

# What the user pages change; `users` is left out because logging in as each role (between
# the snapshots) records the login.
TABLES = ("clients", "messages", "mailings", "mailing_clients", "mailing_runs", "deliveries")


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    return table_snapshot(engine, TABLES)


CONTENT = {"owner": 200, "other": 200, "manager": 403, "editor": 403, "admin": 200}
OWNED = {"owner": 200, "other": 404, "manager": 403, "editor": 403, "admin": 200}
OVERSEEN = {"owner": 200, "other": 404, "manager": 200, "editor": 403, "admin": 200}
EVERYONE = {"owner": 200, "other": 200, "manager": 200, "editor": 200, "admin": 200}

GET_ROUTES: dict[str, dict[str, int]] = {
    "/dashboard": EVERYONE,
    "/clients": CONTENT,
    "/clients?q=client&page=2": CONTENT,
    "/clients/new": CONTENT,
    "/clients/import": CONTENT,
    "/clients/export.csv": CONTENT,
    "/clients/{client}/edit": OWNED,
    "/messages": CONTENT,
    "/messages/new": CONTENT,
    "/messages/{message}": OWNED,
    "/messages/{message}?client={client}": OWNED,
    "/messages/{message}/edit": OWNED,
    "/mailings": {**CONTENT, "manager": 200},
    "/mailings?status=disabled": {**CONTENT, "manager": 200},
    "/mailings/new": CONTENT,
    "/mailings/{mailing}": OVERSEEN,
    "/mailings/{mailing}/edit": OWNED,
    "/mailings/{mailing}/attempts": OVERSEEN,
    "/mailings/{mailing}/attempts?status=failed&page=3": OVERSEEN,
    "/mailings/{mailing}/attempts.csv": OVERSEEN,
}


def _url(template: str, w: World) -> str:
    return template.format(
        client=w.clients["owner"], message=w.messages["owner"], mailing=w.mailings["owner"]
    )


def _expect(table: dict[str, int], role: str) -> int:
    return 303 if role in ("anonymous", "blocked") else table[role]


def _check(response: Any, expected: int, role: str, what: str) -> str | None:
    if response.status_code != expected:
        return f"{what} as {role}: {response.status_code}, expected {expected}"
    location = response.headers.get("location", "")
    if role in ("anonymous", "blocked") and not location.startswith("/login?next="):
        return f"{what} as {role}: redirected to {location}"
    if expected == 404 and "client-of-owner" in response.text:
        return f"{what} as {role}: the 404 page shows the owner's data"
    return None


@pytest.mark.parametrize("template", list(GET_ROUTES))
def test_get_route_per_role(client: TestClient, world: World, template: str) -> None:
    url = _url(template, world)
    problems = []
    for role in ROLES:
        as_role(client, world, role)
        response = client.get(url)
        problem = _check(response, _expect(GET_ROUTES[template], role), role, f"GET {url}")
        if problem:
            problems.append(problem)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "url",
    [
        "/clients/999999/edit",
        "/clients/abc/edit",
        "/messages/999999",
        "/messages/999999/edit",
        "/mailings/999999",
        "/mailings/999999/edit",
        "/mailings/999999/attempts",
        "/mailings/x/attempts.csv",
    ],
)
def test_missing_objects_are_404_like_others(client: TestClient, world: World, url: str) -> None:
    as_role(client, world, "owner")
    assert client.get(url).status_code == 404


def test_preview_for_another_users_client_is_404(client: TestClient, world: World) -> None:
    as_role(client, world, "owner")
    response = client.get(f"/messages/{world.messages['owner']}?client={world.clients['other']}")
    assert response.status_code == 404
    assert "client-of-other" not in response.text


# -- POSTs ----------------------------------------------------------------------------------

# Each POST: form data, and the status per role that may act (others refused as listed).
POST_ROUTES: dict[str, tuple[dict[str, Any], dict[str, int]]] = {
    "/clients/new": (
        {"email": "fresh@example.com", "full_name": "Fresh"},
        {"owner": 303, "other": 303, "manager": 403, "editor": 403, "admin": 303},
    ),
    "/clients/{client}/edit": (
        {"email": "changed@example.com", "full_name": "Changed", "comment": ""},
        {"owner": 303, "other": 404, "manager": 403, "editor": 403, "admin": 303},
    ),
    "/clients/{client}/delete": (
        {},
        {"owner": 303, "other": 404, "manager": 403, "editor": 403, "admin": 303},
    ),
    "/clients/import": (
        {"_file": b"email,full_name\nimported@example.com,Imported\n"},
        {"owner": 200, "other": 200, "manager": 403, "editor": 403, "admin": 200},
    ),
    "/messages/new": (
        {"subject": "Fresh", "body": "Hello"},
        {"owner": 303, "other": 303, "manager": 403, "editor": 403, "admin": 303},
    ),
    "/messages/{message}/edit": (
        {"subject": "Changed", "body": "Changed body"},
        {"owner": 303, "other": 404, "manager": 403, "editor": 403, "admin": 303},
    ),
    "/messages/{message}/delete": (
        {},
        {"owner": 303, "other": 404, "manager": 403, "editor": 403, "admin": 303},
    ),
    # The owner's message and client in the form: another user or an admin creating a mailing
    # of their own cannot use them (400, the form again), a manager or an editor cannot create.
    "/mailings/new": (
        {"message_id": "{used_message}", "client_ids": "{client}", "start": "", "every": "once"},
        {"owner": 303, "other": 400, "manager": 403, "editor": 403, "admin": 400},
    ),
    "/mailings/{mailing}/edit": (
        {
            "message_id": "{message}",
            "client_ids": "{client}",
            "start": "",
            "end": "",
            "every": "month",
        },
        {"owner": 303, "other": 404, "manager": 403, "editor": 403, "admin": 303},
    ),
    "/mailings/{mailing}/delete": (
        {},
        {"owner": 303, "other": 404, "manager": 403, "editor": 403, "admin": 303},
    ),
    "/mailings/{mailing}/disable": (
        {},
        {"owner": 303, "other": 404, "manager": 303, "editor": 403, "admin": 303},
    ),
    "/mailings/{mailing}/enable": (
        {},
        {"owner": 303, "other": 404, "manager": 303, "editor": 403, "admin": 303},
    ),
    "/mailings/{mailing}/send": (
        {},
        {"owner": 303, "other": 404, "manager": 403, "editor": 403, "admin": 303},
    ),
}


def _fill(data: dict[str, Any], w: World) -> dict[str, Any]:
    return {
        k: v.format(
            client=w.clients["owner"],
            message=w.messages["owner"],
            used_message=w.mailing_messages["owner"],
        )
        if isinstance(v, str)
        else v
        for k, v in data.items()
    }


def _submit(client: TestClient, url: str, data: dict[str, Any], *, token: bool = True) -> Any:
    data = dict(data)
    files = None
    if "_file" in data:
        files = {"file": ("clients.csv", data.pop("_file"), "text/csv")}
    if token:
        return post_form(client, url, data, files=files)
    return client.post(url, data=data, files=files)


@pytest.mark.parametrize("template", list(POST_ROUTES))
def test_refused_post_changes_nothing(
    client: TestClient, world: World, engine: Engine, template: str
) -> None:
    data, table = POST_ROUTES[template]
    url = _url(template, world)
    refused = [r for r in ROLES if _expect(table, r) >= 400 or r in ("anonymous", "blocked")]
    before = snapshot(engine)
    problems = []
    for role in refused:
        as_role(client, world, role)
        response = _submit(client, url, _fill(data, world))
        problem = _check(response, _expect(table, role), role, f"POST {url}")
        if problem:
            problems.append(problem)
        if snapshot(engine) != before:
            problems.append(f"POST {url} as {role} changed the database")
            before = snapshot(engine)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("template", list(POST_ROUTES))
def test_post_without_csrf_token_is_refused(
    client: TestClient, world: World, engine: Engine, template: str
) -> None:
    data, _table = POST_ROUTES[template]
    as_role(client, world, "owner")
    before = snapshot(engine)
    response = _submit(client, _url(template, world), _fill(data, world), token=False)
    assert response.status_code == 403
    assert snapshot(engine) == before


ALLOWED = [
    (template, role)
    for template, (_data, table) in POST_ROUTES.items()
    for role, status in table.items()
    if status < 400
]


@pytest.mark.parametrize(("template", "role"), ALLOWED)
def test_allowed_post(
    client: TestClient, world: World, engine: Engine, template: str, role: str
) -> None:
    data, table = POST_ROUTES[template]
    url = _url(template, world)
    if template.endswith("/enable"):
        with session_scope(engine) as s:
            mailing = s.get(Mailing, world.mailings["owner"])
            assert mailing is not None
            mailing.is_enabled = False
            s.add(mailing)
    as_role(client, world, role)
    before = snapshot(engine)
    response = _submit(client, url, _fill(data, world))
    assert response.status_code == table[role], response.text
    if response.status_code == 303:
        assert not response.headers["location"].startswith("/login")
    assert snapshot(engine) != before, f"POST {url} as {role} changed nothing"

    with session_scope(engine, readonly=True) as s:
        if template == "/clients/{client}/delete":
            assert s.get(Client, world.clients["owner"]) is None
        elif template == "/clients/{client}/edit":
            assert s.get(Client, world.clients["owner"]).email == "changed@example.com"  # type: ignore[union-attr]
        elif template == "/messages/{message}/delete":
            assert s.get(Message, world.messages["owner"]) is None
        elif template == "/mailings/{mailing}/delete":
            assert s.get(Mailing, world.mailings["owner"]) is None
        elif template == "/mailings/{mailing}/disable":
            assert s.get(Mailing, world.mailings["owner"]).is_enabled is False  # type: ignore[union-attr]
        elif template == "/mailings/{mailing}/enable":
            assert s.get(Mailing, world.mailings["owner"]).is_enabled is True  # type: ignore[union-attr]
        elif template == "/mailings/{mailing}/edit":
            assert s.get(Mailing, world.mailings["owner"]).every == "month"  # type: ignore[union-attr]
    if template.endswith("/send"):
        worker = state_of(client).sender
        assert worker.wait(timeout=10)


def test_manager_sees_no_edit_buttons(client: TestClient, world: World) -> None:
    as_role(client, world, "manager")
    listing = client.get("/mailings").text
    detail = client.get(f"/mailings/{world.mailings['owner']}").text
    for page in (listing, detail):
        assert f"/mailings/{world.mailings['owner']}/disable" in page
        assert f"/mailings/{world.mailings['owner']}/edit" not in page
        assert f"/mailings/{world.mailings['owner']}/delete" not in page
        assert f"/mailings/{world.mailings['owner']}/send" not in page
        assert "/mailings/new" not in page
    assert "owner@example.com" in listing and "other@example.com" in listing


def test_owner_list_shows_only_own_mailings(client: TestClient, world: World) -> None:
    as_role(client, world, "owner")
    page = client.get("/mailings").text
    assert f'href="/mailings/{world.mailings["owner"]}"' in page
    assert f'href="/mailings/{world.mailings["other"]}"' not in page
    assert "Used other" not in page
