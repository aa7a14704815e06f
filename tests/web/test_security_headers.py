"""Every response of the panel carries the security headers: every route and method, for a
visitor and for a logged-in admin, errors, redirects, 404s, 405s, a 500 and static files."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from mailctl.web.headers import CSP
from tests.support.web import as_role, logged_in, post_form
from tests.support.world import World

# The policy the panel promises (brief of phase 1, issue 11): nothing inline, no framing.
POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
)
EXPECTED = {
    "content-security-policy": POLICY,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
}


# The routes that serve a user's HTML (web/frames.py): a sandboxing policy of their own, and
# framed by the panel itself only (the view-in-browser page not at all).
FRAMED = re.compile(
    r"^/(messages/[^/]+/preview|layouts/[^/]+/preview|mailings/[^/]+/message)\.html$"
)
USER_HTML = (
    "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
    "font-src https: data:; base-uri 'none'; form-action 'none'; frame-ancestors {}"
)


def check(response) -> None:  # type: ignore[no-untyped-def]
    path = response.request.url.path
    where = f"{response.request.method} {path} -> {response.status_code}"
    expected = dict(EXPECTED)
    if response.status_code == 200 and FRAMED.match(path):
        expected["content-security-policy"] = USER_HTML.format("'self'")
        expected["x-frame-options"] = "SAMEORIGIN"
    elif response.status_code == 200 and path.startswith("/view/"):
        expected["content-security-policy"] = USER_HTML.format("'none'")
    for name, value in expected.items():
        assert response.headers.get(name) == value, f"{name} on {where}"
    assert "camera=()" in response.headers.get("permissions-policy", ""), where
    assert "strict-transport-security" not in response.headers, where  # plain HTTP here


def test_the_policy_is_the_promised_one() -> None:
    assert CSP == POLICY
    assert "unsafe-inline" not in CSP and "unsafe-eval" not in CSP


def _paths(app, world: World) -> Iterator[tuple[str, str]]:  # type: ignore[no-untyped-def]
    ids = {
        "client_id": world.clients["owner"],
        "message_id": world.messages["owner"],
        "mailing_id": world.mailings["owner"],
        "user_id": world.users["other"].id,
        "post_id": 1,
    }
    for route in app.routes:
        if not isinstance(route, Route):
            continue
        path = re.sub(r"\{(\w+)\}", lambda m: str(ids.get(m.group(1), "not-a-token")), route.path)
        for method in sorted(route.methods or ()):
            yield method, path
        yield "PUT", path  # no route takes it: 405
        yield "OPTIONS", path


@pytest.mark.parametrize("who", ["anonymous", "admin", "owner"])
def test_every_route_and_method_carries_the_headers(client, world, who) -> None:
    as_role(client, world, who)
    seen = set()
    for method, path in _paths(client.app, world):
        if method == "POST" and path == "/logout":
            continue  # keep the session for the rest
        response = client.request(method, path)  # no CSRF token: 403 for forms
        check(response)
        seen.add(response.status_code)
        if method == "POST" and who != "anonymous":
            with_token = post_form(client, path, {})  # a real submission, valid or not
            check(with_token)
            seen.add(with_token.status_code)
    # Pages, redirects, refused forms, missing things and wrong methods all came by.
    assert {200, 303, 400, 403, 404, 405} <= seen, seen


@pytest.mark.parametrize(
    "path",
    [
        "/static/vendor/bootstrap/bootstrap.min.css",
        "/static/mailctl.css",
        "/static/nothing.css",
        "/static/vendor/../../etc/passwd",
        "/uploads/missing.png",
        "/no/such/page",
    ],
)
def test_static_files_and_missing_ones_carry_the_headers(client, path: str) -> None:
    response = client.get(path)
    check(response)
    if path in ("/static/mailctl.css", "/static/vendor/bootstrap/bootstrap.min.css"):
        assert response.status_code == 200 and "text/css" in response.headers["content-type"]


def test_a_server_error_carries_the_headers(settings, engine) -> None:
    from mailctl.web.app import create_app

    app = create_app(settings)

    async def boom(request):  # type: ignore[no-untyped-def]
        raise RuntimeError("a bug")

    app.router.routes.append(Route("/boom", boom))
    with TestClient(app, raise_server_exceptions=False) as browser:
        response = browser.get("/boom")
    assert response.status_code == 500
    check(response)


def test_hsts_only_behind_https(settings, engine, monkeypatch) -> None:
    from mailctl.config import load_settings
    from mailctl.web.app import create_app

    monkeypatch.setenv("MAILCTL_WEB_SECURE_COOKIES", "1")
    with TestClient(create_app(load_settings()), follow_redirects=False) as browser:
        for path in ("/", "/login", "/no/such/page", "/static/mailctl.css", "/dashboard"):
            response = browser.get(path)
            assert response.headers["strict-transport-security"].startswith("max-age=31536000")
            assert response.headers["content-security-policy"] == POLICY


def test_no_page_needs_inline_style_or_script(client, world) -> None:
    """The policy forbids them: a page that used them would break in the browser."""
    # Attributes inside a tag: escaped text (a layout's HTML in a textarea) holds none.
    inline = re.compile(
        r"<script(?![^>]*\bsrc=)|<style|<[a-z][^<>]*\sstyle=|<[a-z][^<>]*\son[a-z]+=", re.I
    )
    for who in ("anonymous", "owner", "admin", "editor", "manager"):
        as_role(client, world, who)
        for method, path in _paths(client.app, world):
            if method != "GET":
                continue
            if FRAMED.match(path) or path.startswith("/view/"):
                continue  # a user's HTML under its own sandboxing policy, not a panel page
            response = client.get(path)
            if "text/html" in response.headers.get("content-type", ""):
                found = inline.search(response.text)
                assert found is None, f"{path} as {who}: {found.group(0) if found else ''}"


def test_the_session_survives_and_login_works_with_the_headers(client, make_user) -> None:
    user = make_user("user", email="hdr@example.com")
    response = logged_in(client, user.email).get("/dashboard")
    assert response.status_code == 200
    check(response)
    assert [m for m in client.app.routes if isinstance(m, Mount)]  # static mounts exist
