"""CSRF, email tokens, login throttling, session ends, escaping, cookie flags."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from starlette.testclient import TestClient

from mailctl.db import session_scope
from mailctl.models import BlogPost, User
from tests.support.env import PASSWORD
from tests.support.mail import mail_link, outbox
from tests.support.web import logged_in, login, post_form, session_data

NEW_PASSWORD = "a much longer new passphrase"
XSS = "<script>alert(1)</script>"


def _later(seconds: int) -> time_machine.travel:
    return time_machine.travel(datetime.now(UTC) + timedelta(seconds=seconds), tick=False)


# -- CSRF ----------------------------------------------------------------------------------------


def _post_routes(engine, admin_id: int, target_id: int):  # type: ignore[no-untyped-def]
    with session_scope(engine) as s:
        post = BlogPost(title="T", content="C", author_id=admin_id)
        s.add(post)
        s.flush()
        post_id = post.id
    return [
        "/register",
        "/verify/resend",
        "/verify/sometoken",
        "/login",
        "/logout",
        "/password/forgot",
        "/password/reset/sometoken",
        "/account/password",
        "/account/profile",
        f"/manage/users/{target_id}/block",
        f"/manage/users/{target_id}/unblock",
        f"/manage/users/{target_id}/role",
        "/editor/posts/new",
        f"/editor/posts/{post_id}",
        f"/editor/posts/{post_id}/delete",
    ]


@pytest.mark.parametrize("token", [None, "", "wrong-token"])
def test_every_post_needs_the_csrf_token(client, engine, make_user, token) -> None:
    admin = make_user("admin")
    target = make_user("user")
    logged_in(client, admin.email)
    for path in _post_routes(engine, admin.id, target.id):
        data = {"email": "x@example.com", "password": PASSWORD, "role": "admin", "title": "changed"}
        if token is not None:
            data["csrf_token"] = token
        response = client.post(path, data=data)
        assert response.status_code == 403, path
    # Nothing happened: still logged in, nobody blocked or promoted, the post unchanged.
    assert client.get("/account").status_code == 200
    with session_scope(engine, readonly=True) as s:
        row = s.get(User, target.id)
        assert row.is_active and row.role == "user"
        assert [p.title for p in s.exec(__import__("sqlmodel").select(BlogPost))] == ["T"]


def test_csrf_token_of_another_session_is_refused(client, make_user, new_client) -> None:
    user = make_user("user")
    logged_in(client, user.email)
    other = new_client()
    other.get("/login")
    foreign = session_data(other)["csrf"]
    response = client.post("/account/profile", data={"csrf_token": foreign, "full_name": "x"})
    assert response.status_code == 403


def test_multipart_post_without_csrf_is_refused(client, make_user) -> None:
    editor = make_user("editor")
    logged_in(client, editor.email)
    response = client.post(
        "/editor/posts/new",
        data={"title": "t", "content": "c"},
        files={"image": ("a.png", b"\x89PNG\r\n\x1a\n" + b"0" * 10, "image/png")},
    )
    assert response.status_code == 403


# -- verification tokens ----------------------------------------------------------------------


@pytest.fixture
def registered(client, settings) -> str:  # type: ignore[no-untyped-def]
    """A just-registered account's verification link path."""
    post_form(
        client,
        "/register",
        {"email": "new@example.com", "password": PASSWORD, "password_confirm": PASSWORD},
    )
    return mail_link(outbox(settings)[0], "/verify/")


def _is_verified(engine) -> bool:  # type: ignore[no-untyped-def]
    with session_scope(engine, readonly=True) as s:
        from sqlmodel import select

        return s.exec(select(User.is_verified).where(User.email == "new@example.com")).one()


def _tampered(path: str) -> list[str]:
    token = path.rsplit("/", 1)[1]
    payload, rest = token.split(".", 1)
    # A character in the middle of the signature: the last one may only carry unused bits.
    middle = len(token) - 10
    flipped = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]
    # A different payload (another user id) with the original signature.
    import base64
    import json

    other = (
        base64.urlsafe_b64encode(json.dumps({"u": 1, "e": "admin@example.com"}).encode())
        .decode()
        .rstrip("=")
    )
    prefix = path.rsplit("/", 1)[0]
    return [
        f"{prefix}/{flipped}",
        f"{prefix}/{other}.{rest}",
        f"{prefix}/garbage",
        f"{prefix}/{payload}",
    ]


def test_verify_tampered(client, engine, registered) -> None:
    for path in _tampered(registered):
        assert client.get(path).status_code == 400, path
        assert post_form(client, path).status_code == 400, path
    assert not _is_verified(engine)


def test_verify_expired(client, engine, registered) -> None:
    with _later(86400 + 60):
        page = client.get(registered)
        assert page.status_code == 400 and "expired" in page.text
        assert post_form(client, registered).status_code == 400
    assert not _is_verified(engine)


def test_verify_short_max_age_from_env(monkeypatch, settings, engine) -> None:
    monkeypatch.setenv("MAILCTL_WEB_TOKEN_MAX_AGE", "5")
    from mailctl.config import load_settings
    from mailctl.web.app import create_app

    short = load_settings()
    with TestClient(create_app(short), follow_redirects=False) as c:
        post_form(
            c,
            "/register",
            {"email": "new@example.com", "password": PASSWORD, "password_confirm": PASSWORD},
        )
        path = mail_link(outbox(short)[0], "/verify/")
        assert c.get(path).status_code == 200
        with _later(10):
            assert c.get(path).status_code == 400


def test_verify_reused(client, engine, registered) -> None:
    assert post_form(client, registered).status_code == 303
    assert _is_verified(engine)
    assert client.get(registered).status_code == 400
    assert post_form(client, registered).status_code == 400


def test_verify_token_is_not_a_reset_token(client, registered) -> None:
    token = registered.rsplit("/", 1)[1]
    assert client.get(f"/password/reset/{token}").status_code == 400


# -- reset tokens ------------------------------------------------------------------------------


@pytest.fixture
def reset_path(client, settings, make_user) -> str:  # type: ignore[no-untyped-def]
    make_user("user", email="forgetful@example.com")
    post_form(client, "/password/forgot", {"email": "forgetful@example.com"})
    return mail_link(outbox(settings)[-1], "/password/reset/")


def _reset(client, path: str, password: str = NEW_PASSWORD):  # type: ignore[no-untyped-def]
    return post_form(client, path, {"password": password, "password_confirm": password})


def test_reset_tampered(client, reset_path) -> None:
    for path in _tampered(reset_path):
        assert client.get(path).status_code == 400, path
        assert _reset(client, path).status_code == 400, path
    assert login(client, "forgetful@example.com").status_code == 303


def test_reset_expired(client, reset_path) -> None:
    with _later(86400 + 60):
        assert client.get(reset_path).status_code == 400
        assert _reset(client, reset_path).status_code == 400
    assert login(client, "forgetful@example.com").status_code == 303


def test_reset_reused(client, reset_path) -> None:
    assert _reset(client, reset_path).status_code == 303
    assert client.get(reset_path).status_code == 400
    assert _reset(client, reset_path, "yet another passphrase").status_code == 400
    assert login(client, "forgetful@example.com", NEW_PASSWORD).status_code == 303


def test_reset_dies_after_a_password_change(client, new_client, reset_path) -> None:
    browser = logged_in(new_client(), "forgetful@example.com")
    changed = post_form(
        browser,
        "/account/password",
        {"old_password": PASSWORD, "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD},
    )
    assert changed.status_code == 303
    assert client.get(reset_path).status_code == 400
    assert _reset(client, reset_path, "attacker's passphrase").status_code == 400
    assert login(client, "forgetful@example.com", NEW_PASSWORD).status_code == 303


def test_reset_ends_open_sessions(client, new_client, reset_path) -> None:
    browser = logged_in(new_client(), "forgetful@example.com")
    assert _reset(client, reset_path).status_code == 303
    assert browser.get("/account").status_code == 303


def test_older_reset_link_dies_when_a_newer_one_is_used(client, settings, reset_path) -> None:
    post_form(client, "/password/forgot", {"email": "forgetful@example.com"})
    newer = mail_link(outbox(settings)[-1], "/password/reset/")
    assert _reset(client, newer).status_code == 303
    assert _reset(client, reset_path, "yet another passphrase").status_code == 400


# -- login throttling --------------------------------------------------------------------------


def test_login_throttled_after_five_failures(app, make_user) -> None:
    user = make_user("user")
    with TestClient(app, follow_redirects=False, client=("10.0.0.1", 1000)) as attacker:
        for _ in range(5):
            assert login(attacker, user.email, "wrong guess!").status_code == 400
        blocked = login(attacker, user.email)  # even the right password
        assert blocked.status_code == 429
        assert "Too many failed attempts" in blocked.text
        assert blocked.headers["retry-after"] == "900"
        assert login(attacker, "someone.else@example.com", "x").status_code == 400
    # Another address (the owner, elsewhere) is not locked out.
    with TestClient(app, follow_redirects=False, client=("10.0.0.2", 1000)) as owner:
        assert login(owner, user.email).status_code == 303
    # After the window the attacker's address may try again.
    with (
        _later(15 * 60 + 5),
        TestClient(app, follow_redirects=False, client=("10.0.0.1", 1000)) as later,
    ):
        assert login(later, user.email).status_code == 303


def test_login_success_clears_the_failures(client, make_user) -> None:
    user = make_user("user")
    for _ in range(4):
        login(client, user.email, "wrong guess!")
    assert login(client, user.email).status_code == 303
    post_form(client, "/logout")
    for _ in range(4):
        assert login(client, user.email, "wrong guess!").status_code == 400
    assert login(client, user.email).status_code == 303


def test_unknown_emails_are_throttled_too(client) -> None:
    for _ in range(5):
        assert login(client, "ghost@example.com", "guess guess").status_code == 400
    assert login(client, "ghost@example.com", "guess guess").status_code == 429


# -- sessions ------------------------------------------------------------------------------


def test_session_ends_at_logout(client, make_user) -> None:
    user = make_user("user")
    logged_in(client, user.email)
    post_form(client, "/logout")
    assert "uid" not in session_data(client)
    assert client.get("/account").status_code == 303


def test_old_cookie_dies_after_logout(app, client, make_user) -> None:
    user = make_user("user")
    logged_in(client, user.email)
    stolen = client.cookies.get("mailctl_session")
    post_form(client, "/logout")
    with TestClient(app, follow_redirects=False, cookies={"mailctl_session": stolen}) as thief:
        assert thief.get("/account").status_code == 303


def test_old_cookie_dies_after_password_change(app, client, make_user) -> None:
    user = make_user("user")
    logged_in(client, user.email)
    stolen = client.cookies.get("mailctl_session")
    post_form(
        client,
        "/account/password",
        {"old_password": PASSWORD, "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD},
    )
    with TestClient(app, follow_redirects=False, cookies={"mailctl_session": stolen}) as thief:
        assert thief.get("/account").status_code == 303
    assert client.get("/account").status_code == 200


def test_blocked_user_is_logged_out_at_the_next_request(client, make_user, new_client) -> None:
    user = make_user("user")
    manager = logged_in(new_client(), make_user("manager").email)
    logged_in(client, user.email)
    assert client.get("/account").status_code == 200
    assert post_form(manager, f"/manage/users/{user.id}/block").status_code == 303
    response = client.get("/account")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/account"
    assert login(client, user.email).status_code == 403
    # Unblocking does not revive the old session, but a new login works.
    assert post_form(manager, f"/manage/users/{user.id}/unblock").status_code == 303
    assert login(client, user.email).status_code == 303


def test_session_cookie_flags(client, make_user) -> None:
    user = make_user("user")
    response = login(client, user.email)
    cookie = response.headers["set-cookie"].lower()
    assert "mailctl_session=" in cookie
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert "secure" not in cookie


def test_secure_cookie_when_configured(settings, engine, make_user) -> None:
    from mailctl.web.app import create_app

    app = create_app(settings.with_overrides("web", secure_cookies=True))
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as c:
        response = login(c, make_user("user").email)
        assert "secure" in response.headers["set-cookie"].lower()


# -- escaping --------------------------------------------------------------------------------


def _escaped(text: str) -> None:
    assert XSS not in text
    assert "<script>" not in text


def test_user_fields_are_escaped_everywhere(client, engine, make_user, new_client) -> None:
    user = make_user("user")
    admin = make_user("admin")
    with session_scope(engine) as s:
        row = s.get(User, user.id)
        row.full_name = XSS
        s.add(row)
    logged_in(client, user.email)
    page = client.get("/account")
    _escaped(page.text)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    admin_browser = logged_in(new_client(), admin.email)
    listing = admin_browser.get("/manage/users")
    _escaped(listing.text)
    assert "&lt;script&gt;" in listing.text
    _escaped(admin_browser.get(f"/manage/users?q={XSS}").text)


def test_registration_name_is_escaped(client, settings) -> None:
    response = post_form(
        client,
        "/register",
        {
            "email": "x@example.com",
            "full_name": XSS,
            "password": "short",
            "password_confirm": "short",
        },
    )
    assert response.status_code == 400
    _escaped(response.text)


def test_login_email_and_next_are_escaped(client) -> None:
    _escaped(client.get('/login?next=/"><script>alert(1)</script>').text)
    _escaped(login(client, XSS, "whatever").text)


def test_blog_fields_are_escaped_everywhere(client, engine, make_user) -> None:
    editor = make_user("editor")
    with session_scope(engine) as s:
        post = BlogPost(
            title=XSS,
            content=f"{XSS}\n\n{XSS}",
            author_id=editor.id,
            published_at=datetime.now(UTC) - timedelta(hours=1),
        )
        s.add(post)
        s.flush()
        post_id = post.id
    for path in ("/", "/blog", f"/blog/{post_id}"):
        page = client.get(path)
        assert page.status_code == 200
        _escaped(page.text)
        assert "&lt;script&gt;" in page.text
    logged_in(client, editor.email)
    for path in ("/editor/posts", f"/editor/posts/{post_id}"):
        page = client.get(path)
        _escaped(page.text)
        assert "&lt;script&gt;" in page.text
    saved = post_form(
        client, f"/editor/posts/{post_id}", {"title": XSS, "content": XSS, "published_at": ""}
    )
    assert saved.status_code == 303
    _escaped(client.get("/editor/posts").text)  # the flash names the title


@pytest.mark.parametrize(
    "path",
    [
        "/blog/99999999999999999999",
        "/mailings/99999999999999999999",
        "/clients/99999999999999999999/edit",
        "/messages/99999999999999999999",
        "/mailings/1/attempts?before=2026-01-01T00:00:00%2B00:00_99999999999999999999",
    ],
)
def test_ids_too_big_for_the_database_are_not_found(client, make_user, path: str) -> None:
    user = make_user("user")
    logged_in(client, user.email)
    assert client.get(path).status_code == 404
