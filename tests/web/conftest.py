"""The panel under TestClient on the migrated temp database, and helpers to drive its forms.

`client` is an anonymous browser that does not follow redirects (tests assert the 303s);
`login(client, email)` logs it in. Form posts need the CSRF token of the client's session:
`csrf(client)`, or `post_form(client, url, data)` which adds it. `outbox(settings)` parses the
emails the outbox transport wrote; `mail_link(message, "/verify/")` is the link's path.
"""

from __future__ import annotations

import base64
import email
import email.policy
import json
import re
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from starlette.testclient import TestClient

PASSWORD = "correct horse battery"  # the one tests/conftest.py make_user gives everyone
COOKIE = "mailctl_session"
_CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="session")
def password_hash() -> str:
    """One argon2 hash of PASSWORD for every web test user: hashing is deliberately slow."""
    from mailctl.services.users import hash_password

    return hash_password(PASSWORD)


@pytest.fixture
def make_user(engine: Engine, password_hash: str) -> Callable[..., Any]:
    """tests/conftest.py's make_user (same signature), without hashing the password each time."""
    from mailctl.db import session_scope
    from mailctl.models import User

    counter = iter(range(1, 10_000))

    def make(
        role: str = "user",
        *,
        email: str | None = None,
        active: bool = True,
        verified: bool = True,
        full_name: str = "",
    ) -> User:
        address = email or f"{role}{next(counter)}@example.com"
        with session_scope(engine) as s:
            user = User(
                email=address,
                full_name=full_name,
                role=role,
                is_active=active,
                is_verified=verified,
                password_hash=password_hash,
            )
            s.add(user)
            s.flush()
            s.refresh(user)
            return user

    return make


@pytest.fixture
def app(settings, engine: Engine):  # type: ignore[no-untyped-def]
    from mailctl.web.app import create_app

    return create_app(settings)


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app, follow_redirects=False) as c:
        yield c


@pytest.fixture
def new_client(app) -> Iterator[Callable[[], TestClient]]:  # type: ignore[no-untyped-def]
    """More browsers on the same app (a second device, another user)."""
    opened: list[TestClient] = []

    def make() -> TestClient:
        c = TestClient(app, follow_redirects=False)
        opened.append(c)
        return c

    yield make
    for c in opened:
        c.close()


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


def post_form(client: TestClient, url: str, data: dict[str, Any] | None = None, **kw: Any):  # type: ignore[no-untyped-def]
    """POST a form with this client's CSRF token, like a browser submitting the page's form."""
    return client.post(url, data={"csrf_token": csrf(client), **(data or {})}, **kw)


def login(client: TestClient, email: str, password: str = PASSWORD, next: str = ""):  # type: ignore[no-untyped-def]
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


def outbox(settings) -> list[EmailMessage]:  # type: ignore[no-untyped-def]
    """Every message the outbox transport wrote, oldest first, parsed."""
    folder = Path(settings.delivery.outbox_dir)
    if not folder.is_dir():
        return []
    files = sorted(folder.glob("*.eml"), key=lambda p: p.name)
    return [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
        for p in files
    ]


def mail_link(message: EmailMessage, prefix: str) -> str:
    """The path of the first link in the message whose path starts with prefix."""
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    match = re.search(r"https?://[^/\s]+(" + re.escape(prefix) + r"\S*)", text)
    assert match, f"no {prefix} link in: {text}"
    return match.group(1)
