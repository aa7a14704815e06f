"""Accounts: register → verification email → log in; resend; reset; change password; logout."""

from __future__ import annotations

import pytest
from sqlmodel import select

from mailctl.db import session_scope
from mailctl.models import User
from tests.support.env import PASSWORD
from tests.support.mail import mail_link, outbox
from tests.support.web import csrf, logged_in, login, post_form

NEW_PASSWORD = "a much longer new passphrase"


def register(client, email="new@example.com", password=PASSWORD, confirm=None, name="New Person"):  # type: ignore[no-untyped-def]
    return post_form(
        client,
        "/register",
        {
            "email": email,
            "password": password,
            "password_confirm": password if confirm is None else confirm,
            "full_name": name,
        },
    )


def verify_from_mail(client, message) -> None:  # type: ignore[no-untyped-def]
    path = mail_link(message, "/verify/")
    page = client.get(path)
    assert page.status_code == 200
    response = post_form(client, path)
    assert response.status_code == 303
    assert response.headers["location"] == "/login"


def test_register_verify_login(client, settings, engine) -> None:
    page = client.get("/register")
    assert page.status_code == 200 and 'name="password_confirm"' in page.text
    response = register(client)
    assert response.status_code == 200
    assert "new@example.com" in response.text

    # Not before the email is confirmed, and the answer says why.
    refused = login(client, "new@example.com")
    assert refused.status_code == 403
    assert "verify your email" in refused.text.lower()
    assert 'href="/verify/resend"' in refused.text

    (message,) = outbox(settings)
    assert message["To"] == "new@example.com"
    assert "Confirm" in message["Subject"]
    assert message["From"].addresses[0].addr_spec == settings.delivery.from_address
    assert message["Message-ID"] and message["Date"]
    assert mail_link(message, "/verify/").startswith("/verify/")
    verify_from_mail(client, message)

    response = login(client, "new@example.com")
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard"
    account = client.get("/account")
    assert account.status_code == 200
    assert "new@example.com" in account.text and "New Person" in account.text
    with session_scope(engine, readonly=True) as s:
        row = s.exec(select(User).where(User.email == "new@example.com")).one()
        assert row.is_verified and row.role == "user" and row.last_login is not None
        assert row.password_hash.startswith("$argon2")


def test_register_same_answer_for_existing_email(client, settings, make_user) -> None:
    make_user("user", email="taken@example.com")
    fresh = register(client, email="free@example.com")
    taken = register(client, email="Taken@Example.com")
    assert fresh.status_code == taken.status_code == 200
    assert fresh.text.replace("free@example.com", "X") == taken.text.replace(
        "taken@example.com", "X"
    )
    mails = {str(m["To"]): m for m in outbox(settings)}
    assert "Confirm" in mails["free@example.com"]["Subject"]
    notice = mails["taken@example.com"]
    assert "already have" in notice["Subject"]
    assert "/verify/" not in notice.get_body().get_content()


def test_register_again_while_unverified_sends_a_new_link(client, settings) -> None:
    register(client)
    register(client)
    first, second = outbox(settings)
    assert "/verify/" in mail_link(second, "/verify/")
    verify_from_mail(client, second)
    assert login(client, "new@example.com").status_code == 303


@pytest.mark.parametrize(
    "email,password,confirm,message",
    [
        ("not-an-email", PASSWORD, PASSWORD, "email"),
        ("a@example.com", "short", "short", "at least 8"),
        ("a@example.com", PASSWORD, PASSWORD + "x", "differ"),
        ("a@example.com", "x" * 1025, "x" * 1025, "at most"),
    ],
)
def test_register_form_errors(client, settings, email, password, confirm, message) -> None:
    response = register(client, email=email, password=password, confirm=confirm)
    assert response.status_code == 400
    assert message in response.text
    assert outbox(settings) == []


def test_register_form_errors_are_the_same_for_existing_emails(client, make_user) -> None:
    make_user("user", email="taken@example.com")
    taken = register(client, email="taken@example.com", password="short", confirm="short")
    free = register(client, email="free@example.com", password="short", confirm="short")
    assert taken.status_code == free.status_code == 400
    assert taken.text.replace("taken@", "X@") == free.text.replace("free@", "X@")


def test_long_passwords_are_not_truncated(client, settings) -> None:
    long = "p" * 200
    register(client, password=long)
    verify_from_mail(client, outbox(settings)[0])
    assert login(client, "new@example.com", "p" * 199 + "q").status_code == 400
    assert login(client, "new@example.com", long).status_code == 303


def test_resend_verification(client, settings, make_user) -> None:
    make_user("user", email="late@example.com", verified=False)
    make_user("user", email="done@example.com")
    page = client.get("/verify/resend")
    assert page.status_code == 200
    answers = [
        post_form(client, "/verify/resend", {"email": address})
        for address in ("late@example.com", "done@example.com", "nobody@example.com")
    ]
    assert {a.status_code for a in answers} == {200}
    texts = {a.text.split("@example.com")[1] for a in answers}
    assert len(texts) == 1  # the same answer whether the account exists or is verified
    (message,) = outbox(settings)
    assert message["To"] == "late@example.com"
    verify_from_mail(client, message)
    assert login(client, "late@example.com").status_code == 303


def test_resend_is_limited_per_address(client, settings, make_user) -> None:
    make_user("user", email="late@example.com", verified=False)
    for _ in range(6):
        assert post_form(client, "/verify/resend", {"email": "late@example.com"}).status_code == 200
    assert len(outbox(settings)) == 3


def test_login_errors_are_the_same_for_unknown_and_wrong(client, make_user) -> None:
    make_user("user", email="known@example.com")
    wrong = login(client, "known@example.com", "wrong password!")
    unknown = login(client, "unknown@example.com", "wrong password!")
    assert wrong.status_code == unknown.status_code == 400
    assert "Wrong email or password" in wrong.text
    assert wrong.text.replace("known@", "X@").replace("unX@", "X@") == unknown.text.replace(
        "unknown@", "X@"
    )


def test_login_blocked_user(client, make_user) -> None:
    make_user("user", email="blocked@example.com", active=False)
    response = login(client, "blocked@example.com")
    assert response.status_code == 403
    assert "blocked" in response.text
    assert client.get("/account").status_code == 303


@pytest.mark.parametrize(
    "role,landing",
    [
        ("user", "/dashboard"),
        ("admin", "/dashboard"),
        ("manager", "/mailings"),
        ("editor", "/editor/posts"),
    ],
)
def test_login_lands_by_role(client, make_user, role, landing) -> None:
    user = make_user(role)
    response = login(client, user.email)
    assert response.headers["location"] == landing


def test_login_goes_to_next_but_never_off_site(client, make_user, new_client) -> None:
    user = make_user("user")
    page = client.get("/account")
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=/account"
    assert 'value="/account"' in client.get(page.headers["location"]).text
    assert login(client, user.email, next="/account").headers["location"] == "/account"
    for evil in (
        "//evil.example",
        "https://evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
    ):
        other = new_client()
        assert login(other, user.email, next=evil).headers["location"] == "/dashboard"


def test_login_starts_a_new_session(client, make_user) -> None:
    user = make_user("user")
    client.get("/login")
    before = csrf(client)
    logged_in(client, user.email)
    assert csrf(client) != before


def test_logout(client, make_user) -> None:
    user = make_user("user")
    logged_in(client, user.email)
    response = post_form(client, "/logout")
    assert response.status_code == 303 and response.headers["location"] == "/"
    assert client.get("/account").status_code == 303
    assert "You are logged out" in client.get("/").text


def test_forgot_and_reset_password(client, settings, make_user) -> None:
    make_user("user", email="forgetful@example.com")
    assert client.get("/password/forgot").status_code == 200
    known = post_form(client, "/password/forgot", {"email": "forgetful@example.com"})
    unknown = post_form(client, "/password/forgot", {"email": "stranger@example.com"})
    assert known.status_code == unknown.status_code == 200
    assert known.text.replace("forgetful@", "X@") == unknown.text.replace("stranger@", "X@")
    (message,) = outbox(settings)
    assert message["To"] == "forgetful@example.com"
    path = mail_link(message, "/password/reset/")
    page = client.get(path)
    assert page.status_code == 200 and "forgetful@example.com" in page.text
    mismatch = post_form(client, path, {"password": NEW_PASSWORD, "password_confirm": "other one!"})
    assert mismatch.status_code == 400 and "differ" in mismatch.text
    done = post_form(client, path, {"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD})
    assert done.status_code == 303 and done.headers["location"] == "/login"
    assert login(client, "forgetful@example.com").status_code == 400
    assert login(client, "forgetful@example.com", NEW_PASSWORD).status_code == 303


def test_reset_confirms_an_unverified_address(client, settings, make_user) -> None:
    make_user("user", email="late@example.com", verified=False)
    post_form(client, "/password/forgot", {"email": "late@example.com"})
    path = mail_link(outbox(settings)[0], "/password/reset/")
    post_form(client, path, {"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD})
    assert login(client, "late@example.com", NEW_PASSWORD).status_code == 303


def test_no_reset_mail_for_blocked_users(client, settings, make_user) -> None:
    make_user("user", email="blocked@example.com", active=False)
    assert (
        post_form(client, "/password/forgot", {"email": "blocked@example.com"}).status_code == 200
    )
    assert outbox(settings) == []


def test_change_password(client, make_user, new_client) -> None:
    user = make_user("user")
    logged_in(client, user.email)
    other_device = logged_in(new_client(), user.email)
    wrong = post_form(
        client,
        "/account/password",
        {
            "old_password": "not it at all",
            "password": NEW_PASSWORD,
            "password_confirm": NEW_PASSWORD,
        },
    )
    assert wrong.status_code == 400 and "current password is wrong" in wrong.text
    short = post_form(
        client,
        "/account/password",
        {"old_password": PASSWORD, "password": "x", "password_confirm": "x"},
    )
    assert short.status_code == 400
    response = post_form(
        client,
        "/account/password",
        {"old_password": PASSWORD, "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD},
    )
    assert response.status_code == 303 and response.headers["location"] == "/account"
    # This session carries on; the other device is logged out.
    assert client.get("/account").status_code == 200
    assert other_device.get("/account").status_code == 303
    assert login(new_client(), user.email).status_code == 400
    assert login(new_client(), user.email, NEW_PASSWORD).status_code == 303


def test_change_name(client, engine, make_user) -> None:
    user = make_user("user")
    logged_in(client, user.email)
    assert post_form(client, "/account/profile", {"full_name": "Ada Lovelace"}).status_code == 303
    assert "Ada Lovelace" in client.get("/account").text
    bad = post_form(client, "/account/profile", {"full_name": "two\nlines"})
    assert bad.status_code == 400


def test_logout_ends_every_session(client, make_user, new_client) -> None:
    user = make_user("user")
    logged_in(client, user.email)
    other_device = logged_in(new_client(), user.email)
    response = post_form(client, "/logout")
    assert response.status_code == 303
    assert client.get("/account").status_code == 303
    assert other_device.get("/account").status_code == 303
    assert login(client, user.email).status_code == 303


def test_account_pages_need_login(client) -> None:
    for path in ("/account",):
        response = client.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")
    for path in ("/account/password", "/account/profile"):
        response = post_form(client, path, {})
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login")


@pytest.mark.parametrize("role", ["user", "manager", "editor", "admin"])
def test_account_page_for_every_role(client, make_user, role) -> None:
    user = make_user(role)
    logged_in(client, user.email)
    page = client.get("/account")
    assert page.status_code == 200
    assert f">{role}<" in page.text


def test_mail_headers_are_safe(settings) -> None:
    from mailctl.sending.mime import HeaderInjection
    from mailctl.sending.notices import build_notice, send_notice

    with pytest.raises(HeaderInjection):
        build_notice(settings=settings, to="a@example.com\r\nBcc: x@evil", subject="s", body="b")
    with pytest.raises(HeaderInjection):
        build_notice(settings=settings, to="a@example.com", subject="s\nBcc: x@evil", body="b")
    assert (
        send_notice(settings=settings, to="a@example.com\nBcc: x", subject="s", body="b").status
        == "failed"
    )
    data = build_notice(settings=settings, to="a@example.com", subject="Grüße", body="Привет\n")
    assert b"=?utf-8?b?" in data and b"Content-Transfer-Encoding: base64" in data
    assert b"\n" not in data.replace(b"\r\n", b"")
