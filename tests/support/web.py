"""The panel under TestClient on the migrated temp database, and helpers to drive its forms.

`client` is an anonymous browser that does not follow redirects (tests assert the 303s);
`login(client, email)` logs it in. Form posts need the CSRF token of the client's session:
`csrf(client)`, or `post_form(client, url, data)` which adds it. The emails the panel sends
are in tests/support/mail.py.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.testclient import TestClient

from mailctl.config import Settings
from mailctl.db import session_scope
from mailctl.models import User
from mailctl.web.state import PanelState, panel_of
from tests.support.env import PASSWORD
from tests.support.world import World

COOKIE = "mailctl_session"
ROLES = ("owner", "other", "manager", "editor", "admin", "blocked", "anonymous")
_CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def app(settings: Settings, engine: Engine) -> Starlette:
    from mailctl.web.app import create_app

    return create_app(settings)


@pytest.fixture
def client(app: Starlette) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as c:
        yield c


@pytest.fixture
def new_client(app: Starlette) -> Iterator[Callable[[], TestClient]]:
    """More browsers on the same app (a second device, another user)."""
    opened: list[TestClient] = []

    def make() -> TestClient:
        c = TestClient(app, follow_redirects=False)
        opened.append(c)
        return c

    yield make
    for c in opened:
        c.close()


def state_of(client: TestClient) -> PanelState:
    """The panel state of the app this client talks to."""
    assert isinstance(client.app, Starlette)
    return panel_of(client.app)


def session_data(client: TestClient) -> dict[str, Any]:
    """The (signed, not encrypted) session cookie's contents."""
    raw = client.cookies.get(COOKIE)
    if not raw:
        return {}
    payload = raw.strip('"').split(".", 1)[0]
    return json.loads(base64.b64decode(payload + "=" * (-len(payload) % 4)))  # type: ignore[no-any-return]


def csrf(client: TestClient) -> str:
    """The CSRF token of this client's session (a page is fetched first when it has none)."""
    token = session_data(client).get("csrf")
    if not token:
        page = client.get("/login")
        match = _CSRF_INPUT.search(page.text)
        assert match, "no CSRF field on /login"
        token = match.group(1)
    return str(token)


def post_form(client: TestClient, url: str, data: dict[str, Any] | None = None, **kw: Any) -> Any:
    """POST a form with this client's CSRF token, like a browser submitting the page's form."""
    return client.post(url, data={"csrf_token": csrf(client), **(data or {})}, **kw)


def login(client: TestClient, email: str, password: str = PASSWORD, next: str = "") -> Any:
    """Log in through the form; returns the response (303 on success)."""
    page = client.get("/login")
    match = _CSRF_INPUT.search(page.text)
    assert match, "no CSRF field on /login"
    response = client.post(
        "/login",
        data={"csrf_token": match.group(1), "email": email, "password": password, "next": next},
    )
    return response


def logged_in(client: TestClient, email: str, password: str = PASSWORD) -> TestClient:
    response = login(client, email, password)
    assert response.status_code == 303, response.text
    return client


def _set_active(engine: Engine, user_id: int | None, active: bool) -> None:
    with session_scope(engine) as s:
        user = s.get(User, user_id)
        assert user is not None
        user.is_active = active
        s.add(user)


def as_role(client: TestClient, world: World, role: str) -> TestClient:
    """The client logged in as the world's `role` (a fresh session; none for anonymous)."""
    client.cookies.clear()
    if role == "anonymous":
        return client
    if role == "blocked":
        # Logged in while active, then blocked: the open session must stop working.
        engine = state_of(client).engine
        _set_active(engine, world.users["blocked"].id, True)
        logged_in(client, "blocked@example.com")
        _set_active(engine, world.users["blocked"].id, False)
        return client
    logged_in(client, f"{role}@example.com")
    return client
