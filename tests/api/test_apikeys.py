"""API keys: shown once, only a keyed hash at rest, revoked and blocked users' keys refused,
the digest compared in constant time, last use recorded at most once a minute; the CLI (piped
and on a terminal) and the account page."""

from __future__ import annotations

import hmac
import re
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlmodel import Session

from mailctl.db import session_scope
from mailctl.errors import Forbidden, Invalid, NotFound, Unauthorized
from mailctl.models import ApiKey, User
from mailctl.services import apikeys
from tests.support import terminal
from tests.support.cli import USER1, fails, ok
from tests.support.web import logged_in, post_form

SECRET = "s" * 40


def _user(session: Session, email: str, *, active: bool = True, role: str = "user") -> User:
    user = User(email=email, role=role, is_active=active, is_verified=True)
    session.add(user)
    session.flush()
    return user


def test_a_key_is_shown_once_and_only_its_keyed_hash_is_stored(session: Session) -> None:
    user = _user(session, "ann@example.com")
    made = apikeys.create_key(session=session, actor=user, secret=SECRET, name="site", scope="read")
    token = made.token
    assert re.fullmatch(r"mk_[A-Za-z0-9]{8}_[A-Za-z0-9_-]{43}", token)
    row = session.get(ApiKey, made.key.id)
    assert row is not None and row.prefix == token.split("_")[1]
    assert token not in (row.digest, row.prefix, row.name)
    assert row.digest == hmac.new(SECRET.encode(), token.encode(), "sha256").hexdigest()
    dumped = str(session.connection().execute(text("SELECT * FROM api_keys")).all())
    assert token not in dumped and token.split("_", 2)[2] not in dumped
    caller = apikeys.authenticate(session=session, token=token, secret=SECRET)
    assert caller.user.id == user.id and caller.scope == "read" and not caller.may_write
    with pytest.raises(Forbidden, match="read-only"):
        apikeys.require_write(caller)
    # Two keys never share a token or a prefix.
    other = apikeys.create_key(session=session, actor=user, secret=SECRET)
    assert other.token != token and other.key.prefix != row.prefix and other.key.scope == "write"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # the secret part off by one
        lambda t: t.split("_")[0] + "_" + t.split("_")[1],  # no secret part
        lambda t: "Bearer " + t,
        lambda t: "",
        lambda t: "mk_" + "x" * 500,
        lambda t: t.replace("mk_", "mk_zz", 1),  # an unknown prefix
    ],
)
def test_wrong_keys_are_refused(session: Session, mangle) -> None:  # type: ignore[no-untyped-def]
    user = _user(session, "ann@example.com")
    token = apikeys.create_key(session=session, actor=user, secret=SECRET).token
    with pytest.raises(Unauthorized):
        apikeys.authenticate(session=session, token=mangle(token), secret=SECRET)
    with pytest.raises(Unauthorized):  # the right key under another app secret
        apikeys.authenticate(session=session, token=token, secret="t" * 40)


def test_revoked_keys_and_blocked_users_are_refused(session: Session) -> None:
    user = _user(session, "ann@example.com")
    first = apikeys.create_key(session=session, actor=user, secret=SECRET, name="a")
    second = apikeys.create_key(session=session, actor=user, secret=SECRET, name="b")
    apikeys.revoke_key(session=session, actor=user, ref=str(first.key.id))
    with pytest.raises(Unauthorized):
        apikeys.authenticate(session=session, token=first.token, secret=SECRET)
    assert [k.name for k in apikeys.list_keys(session=session, actor=user)] == ["b"]
    apikeys.authenticate(session=session, token=second.token, secret=SECRET)
    user.is_active = False
    session.add(user)
    with pytest.raises(Unauthorized):
        apikeys.authenticate(session=session, token=second.token, secret=SECRET)
    user.is_active = True
    apikeys.authenticate(session=session, token=second.token, secret=SECRET)  # unblocked: works


def test_a_key_is_another_users_to_revoke_never(session: Session) -> None:
    ann, bob = _user(session, "ann@example.com"), _user(session, "bob@example.com")
    made = apikeys.create_key(session=session, actor=ann, secret=SECRET)
    with pytest.raises(NotFound):
        apikeys.revoke_key(session=session, actor=bob, ref=str(made.key.id))
    with pytest.raises(NotFound):
        apikeys.revoke_key(session=session, actor=bob, ref=made.key.prefix)
    assert apikeys.revoke_key(session=session, actor=ann, ref=f"mk_{made.key.prefix}").revoked_at
    with pytest.raises(Invalid, match="unknown scope"):
        apikeys.create_key(session=session, actor=ann, secret=SECRET, scope="admin")
    with pytest.raises(Invalid):
        apikeys.create_key(session=session, actor=ann, secret=SECRET, name="x" * 101)


def test_the_digest_is_compared_in_constant_time_even_for_unknown_keys(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A miss (no such prefix) and a wrong secret go through the same constant-time compare:
    neither the answer nor its timing tells them apart."""
    user = _user(session, "ann@example.com")
    token = apikeys.create_key(session=session, actor=user, secret=SECRET).token
    compared: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a, b):  # type: ignore[no-untyped-def]
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(apikeys.hmac, "compare_digest", spy)
    for guess in (token[:-2] + "zz", "mk_nosuchke_" + "a" * 43):
        with pytest.raises(Unauthorized):
            apikeys.authenticate(session=session, token=guess, secret=SECRET)
    assert len(compared) == 2 and all(len(a) == len(b) == 64 for a, b in compared)


def test_last_use_is_recorded_at_most_once_a_minute(session: Session) -> None:
    user = _user(session, "ann@example.com")
    made = apikeys.create_key(session=session, actor=user, secret=SECRET)
    assert made.key.last_used_at is None
    apikeys.authenticate(session=session, token=made.token, secret=SECRET)
    first = made.key.last_used_at
    assert first is not None
    apikeys.authenticate(session=session, token=made.token, secret=SECRET)
    assert made.key.last_used_at == first  # no write for a second call within the minute
    made.key.last_used_at = first - timedelta(minutes=2)
    apikeys.authenticate(session=session, token=made.token, secret=SECRET)
    assert made.key.last_used_at is not None and made.key.last_used_at > first


def test_apikey_commands_piped_and_on_a_terminal(cli, make_user, settings, engine) -> None:  # type: ignore[no-untyped-def]
    make_user("user", email=USER1)
    make_user("user", email="user2@example.com")
    added = ok(cli("apikey", "add", "--name", "website", "--scope", "read", as_=USER1))
    token = added.stdout.strip()
    assert token.startswith("mk_") and "shown only now" in added.stderr
    ok(cli("apikey", "add", "--name", "shop", as_=USER1))
    listed = ok(cli("apikey", "list", as_=USER1)).stdout
    assert listed.splitlines()[0] == "id\tname\tprefix\tscope\tcreated_at\tlast_used_at"
    assert "website" in listed and "shop" in listed and token not in listed
    assert token.split("_")[1] in listed  # the prefix, to tell keys apart
    assert "website" not in ok(cli("apikey", "list", as_="user2@example.com")).stdout
    screen = terminal.run(["--as", USER1, "apikey", "list"], colour=False).assert_clean()
    assert "website" in screen.text and "─" in screen.text and token not in screen.text
    fails(cli("apikey", "add", "--scope", "root", as_=USER1), "unknown scope")
    fails(cli("apikey", "rm", "99", as_=USER1), "API key 99 not found")
    fails(cli("apikey", "rm", "1", as_="user2@example.com"), "API key 1 not found")
    ok(cli("apikey", "rm", "1", as_=USER1))
    with session_scope(engine) as s, pytest.raises(Unauthorized):
        apikeys.authenticate(session=s, token=token, secret=settings.web_secret_key())


def test_the_account_page_makes_shows_once_and_revokes_keys(
    client, make_user, engine, settings
) -> None:  # type: ignore[no-untyped-def]
    make_user("user", email="ann@example.com")
    make_user("user", email="bob@example.com")
    logged_in(client, "ann@example.com")
    page = client.get("/account")
    assert page.status_code == 200 and "No API keys yet" in page.text
    refused = client.post("/account/apikeys", data={"name": "site", "scope": "read"})
    assert refused.status_code == 403  # no CSRF token
    made = post_form(client, "/account/apikeys", {"name": "site", "scope": "read"})
    assert made.status_code == 200 and made.headers["cache-control"] == "no-store"
    token = re.search(r'id="new-key">(mk_[^<]+)<', made.text)
    assert token, made.text
    again = client.get("/account")
    assert token.group(1) not in again.text and "site" in again.text
    assert token.group(1) not in str(client.cookies.get("mailctl_session"))
    with session_scope(engine) as s:
        caller = apikeys.authenticate(
            session=s, token=token.group(1), secret=settings.web_secret_key()
        )
        key_id = caller.key_id
    bad = post_form(client, "/account/apikeys", {"name": "x", "scope": "root"})
    assert bad.status_code == 400 and "unknown scope" in bad.text
    client.cookies.clear()
    logged_in(client, "bob@example.com")
    assert post_form(client, f"/account/apikeys/{key_id}/revoke").status_code == 404
    client.cookies.clear()
    logged_in(client, "ann@example.com")
    assert post_form(client, f"/account/apikeys/{key_id}/revoke").status_code == 303
    with session_scope(engine) as s, pytest.raises(Unauthorized):
        apikeys.authenticate(session=s, token=token.group(1), secret=settings.web_secret_key())
