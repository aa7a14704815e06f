"""Account flows in services/accounts.py: sign up, confirm, log in, reset; which email goes out;
the one password rule; the typed errors the panel answers from."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlmodel import Session

from mailctl.cache import Cache
from mailctl.config import Settings
from mailctl.errors import BadPassword, Forbidden, Invalid, Throttled, Unauthorized, Unverified
from mailctl.models import User
from mailctl.services import accounts, users
from mailctl.services.accounts import Links, NoticeKind
from mailctl.services.passwords import PASSWORD_MAX, PASSWORD_MIN, check_password
from mailctl.tokens import sign
from tests.support.env import PASSWORD
from tests.support.world import World

SECRET = "a test secret that is long enough"
DAY = 24 * 3600
LINKS = Links(base_url="https://mail.example.org", secret=SECRET, max_age=DAY)


@pytest.fixture
def counters(settings: Settings) -> Iterator[Cache]:
    """The real disk cache the panel throttles with."""
    cache = Cache(settings)
    yield cache
    cache.close()


def _user(session: Session, world: World, name: str) -> User:
    user = session.get(User, world.users[name].id)
    assert user is not None
    return user


def _token(link: str, prefix: str) -> str:
    assert link.startswith(LINKS.base_url + prefix), link
    return link.removeprefix(LINKS.base_url + prefix)


# -- the password rule -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "confirm", "match"),
    [
        ("x" * (PASSWORD_MIN - 1), None, f"at least {PASSWORD_MIN}"),
        ("x" * (PASSWORD_MAX + 1), None, f"at most {PASSWORD_MAX}"),
        (PASSWORD, PASSWORD + "!", "differ"),
    ],
)
def test_the_password_rule(password: str, confirm: str | None, match: str) -> None:
    with pytest.raises(BadPassword, match=match):
        check_password(password, confirm=confirm)
    check_password("x" * PASSWORD_MIN)
    check_password("x" * PASSWORD_MAX, confirm="x" * PASSWORD_MAX)


@pytest.mark.parametrize("password", ["short", "x" * (PASSWORD_MAX + 1)])
def test_every_flow_that_sets_a_password_applies_the_same_rule(
    session: Session, world: World, counters: Cache, refuse: Any, password: str
) -> None:
    owner = _user(session, world, "owner")
    token = accounts.reset_token(user=_user(session, world, "subject"), secret=SECRET)
    with pytest.raises(BadPassword) as rule:  # the rule's own message
        check_password(password)
    flows = [
        lambda: accounts.sign_up(
            session=session,
            links=LINKS,
            counters=counters,
            email="n@example.com",
            password=password,
        ),
        lambda: accounts.reset_password(
            session=session, links=LINKS, token=token, new_password=password
        ),
        lambda: accounts.change_password(
            session=session,
            actor=owner,
            old_password=PASSWORD,
            new_password=password,
            confirm=password,
        ),
        lambda: users.set_password(
            session=session, actor=owner, user_id=owner.id or 0, new_password=password
        ),
        lambda: users.add_user(
            session=session,
            actor=_user(session, world, "admin"),
            email="added@example.com",
            password=password,
        ),
    ]
    for flow in flows:
        error = refuse(BadPassword, flow)
        assert str(error) == str(rule.value)


# -- sign up -----------------------------------------------------------------------------------


def _sign_up(session: Session, counters: Cache, email: str, **kw: Any) -> accounts.Sent:
    return accounts.sign_up(
        session=session,
        links=LINKS,
        counters=counters,
        email=email,
        password=kw.pop("password", PASSWORD),
        confirm=kw.pop("confirm", None),
        **kw,
    )


def test_sign_up_sends_a_verification_link_to_a_new_account(
    session: Session, world: World, counters: Cache
) -> None:
    sent = _sign_up(session, counters, "Fresh@Example.com", full_name="Fresh")
    assert sent.address == "fresh@example.com"
    user = users.find_by_email(session=session, email="fresh@example.com")
    assert user is not None and not user.is_verified and user.full_name == "Fresh"
    assert sent.notice is not None
    assert (sent.notice.kind, sent.notice.to) == (NoticeKind.verification, "fresh@example.com")
    token = _token(sent.notice.link, "/verify/")
    assert accounts.verification_target(session=session, links=LINKS, token=token).id == user.id


def test_sign_up_again_tells_a_confirmed_account_it_exists(
    session: Session, world: World, counters: Cache
) -> None:
    sent = _sign_up(session, counters, " OWNER@example.com", password="x" * 9)
    assert sent.notice is not None
    assert sent.notice.kind is NoticeKind.already_registered
    assert sent.notice.link == "https://mail.example.org/login"
    assert sent.notice.reset_link == "https://mail.example.org/password/forgot"
    # The password of the account is not touched by someone else's sign-up.
    assert accounts.authenticate(session=session, email="owner@example.com", password=PASSWORD)


def test_sign_up_again_while_unconfirmed_sends_a_new_link(
    session: Session, world: World, counters: Cache
) -> None:
    sent = _sign_up(session, counters, "subject@example.com")
    assert sent.notice is not None and sent.notice.kind is NoticeKind.verification
    subject = _user(session, world, "subject")
    token = _token(sent.notice.link, "/verify/")
    assert accounts.verify_email(session=session, links=LINKS, token=token).id == subject.id


def test_sign_up_of_a_blocked_account_sends_no_link(
    session: Session, world: World, counters: Cache
) -> None:
    sent = _sign_up(session, counters, "blocked@example.com")
    assert sent.notice is not None and sent.notice.kind is NoticeKind.already_registered


@pytest.mark.parametrize(
    ("fields", "error", "match"),
    [
        ({"email": "not-an-email"}, Invalid, "email"),
        ({"email": "a@example.com", "password": "short"}, BadPassword, "at least 8"),
        ({"email": "a@example.com", "confirm": PASSWORD + "x"}, BadPassword, "differ"),
        ({"email": "a@example.com", "full_name": "two\nlines"}, Invalid, "name"),
    ],
)
def test_a_bad_sign_up_form_is_refused_before_any_lookup(
    session: Session,
    world: World,
    counters: Cache,
    refuse: Any,
    fields: dict[str, str],
    error: type[Exception],
    match: str,
) -> None:
    refuse(error, lambda: _sign_up(session, counters, **fields), match)
    # Refused before the throttle counts it: a bad form sends nothing and costs no email.
    assert all(_sign_up(session, counters, "a@example.com").notice is not None for _ in range(3))


def test_sign_up_emails_are_limited_per_address(
    session: Session, world: World, counters: Cache
) -> None:
    notices = [_sign_up(session, counters, "owner@example.com").notice for _ in range(5)]
    assert [n is not None for n in notices] == [True, True, True, False, False]
    # Counted per address, whether or not it has an account.
    assert _sign_up(session, counters, "someone@example.com").notice is not None


# -- confirming the address --------------------------------------------------------------------


def test_resend_only_for_an_active_unconfirmed_account(
    session: Session, world: World, counters: Cache
) -> None:
    answers = {
        email: accounts.resend_verification(
            session=session, links=LINKS, counters=counters, email=email
        )
        for email in (" Subject@example.com", "owner@example.com", "nobody@example.com")
    }
    notices = {email.strip().lower(): sent.notice for email, sent in answers.items()}
    assert notices["owner@example.com"] is None and notices["nobody@example.com"] is None
    notice = notices["subject@example.com"]
    assert notice is not None and notice.kind is NoticeKind.verification
    assert notice.to == "subject@example.com"


def test_verification_link_works_once(session: Session, world: World) -> None:
    subject = _user(session, world, "subject")
    assert not subject.is_verified
    token = accounts.verification_token(user=subject, secret=SECRET)
    args = {"token": token, "links": LINKS}
    assert accounts.verification_target(session=session, **args).id == subject.id
    assert accounts.verify_email(session=session, **args).is_verified
    with pytest.raises(Invalid, match="already been used"):
        accounts.verify_email(session=session, **args)


def test_verification_link_is_tied_to_the_address(session: Session, world: World) -> None:
    subject = _user(session, world, "subject")
    token = accounts.verification_token(user=subject, secret=SECRET)
    subject.email = "changed@example.com"
    with pytest.raises(Invalid, match="already been used"):
        accounts.verify_email(session=session, links=LINKS, token=token)
    assert not subject.is_verified


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda uid: sign("another secret", "verify", {"u": uid, "e": "x"}), "not valid"),
        (lambda uid: sign(SECRET, "reset", {"u": uid, "e": "x"}), "not valid"),
        (lambda uid: sign(SECRET, "verify", uid), "not valid"),
        (lambda uid: "garbage", "not valid"),
    ],
)
def test_forged_verification_links_are_refused(
    session: Session, world: World, make: Any, message: str
) -> None:
    token = make(world.users["subject"].id)
    with pytest.raises(Invalid, match=message):
        accounts.verify_email(session=session, links=LINKS, token=token)


def test_verification_link_expires(session: Session, world: World) -> None:
    token = accounts.verification_token(user=_user(session, world, "subject"), secret=SECRET)
    expired = Links(base_url=LINKS.base_url, secret=SECRET, max_age=-1)
    with pytest.raises(Invalid, match="expired"):
        accounts.verify_email(session=session, links=expired, token=token)


# -- logging in --------------------------------------------------------------------------------


def test_an_unconfirmed_account_is_refused_with_a_typed_error(
    session: Session, world: World
) -> None:
    with pytest.raises(Unverified, match="verify your email"):
        accounts.authenticate(session=session, email="subject@example.com", password=PASSWORD)
    with pytest.raises(Forbidden) as blocked:
        accounts.authenticate(session=session, email="blocked@example.com", password=PASSWORD)
    assert not isinstance(blocked.value, Unverified)


def test_log_in_pauses_after_five_wrong_passwords(
    session: Session, world: World, counters: Cache
) -> None:
    def attempt(password: str, host: str = "10.0.0.1") -> User:
        return accounts.log_in(
            session=session,
            counters=counters,
            email="owner@example.com",
            password=password,
            host=host,
        )

    assert attempt(PASSWORD).id == world.users["owner"].id
    for _ in range(accounts.LOGIN_FAILURES):
        with pytest.raises(Unauthorized):
            attempt("wrong password!")
    with pytest.raises(Throttled) as paused:
        attempt(PASSWORD)  # not even the right password is checked now
    assert paused.value.retry_after == accounts.THROTTLE_SECONDS
    assert paused.value.http_status == 429
    # Counted per address and host: the owner on another machine still gets in, which
    # clears nothing for the first host.
    assert attempt(PASSWORD, host="10.0.0.2").id == world.users["owner"].id
    with pytest.raises(Throttled):
        attempt(PASSWORD)


def test_a_successful_log_in_forgets_the_failures(
    session: Session, world: World, counters: Cache
) -> None:
    def attempt(password: str) -> User:
        return accounts.log_in(
            session=session,
            counters=counters,
            email="owner@example.com",
            password=password,
            host="h",
        )

    for _ in range(accounts.LOGIN_FAILURES - 1):
        with pytest.raises(Unauthorized):
            attempt("wrong password!")
    attempt(PASSWORD)
    for _ in range(accounts.LOGIN_FAILURES - 1):
        with pytest.raises(Unauthorized):
            attempt("wrong password!")
    assert attempt(PASSWORD).id == world.users["owner"].id


# -- reset links -------------------------------------------------------------------------------


def test_request_reset_only_for_an_active_account(
    session: Session, world: World, counters: Cache
) -> None:
    def ask(email: str) -> accounts.Sent:
        return accounts.request_reset(session=session, links=LINKS, counters=counters, email=email)

    assert ask("nobody@example.com").notice is None
    assert ask("blocked@example.com").notice is None
    notice = ask(" Owner@example.com ").notice
    assert notice is not None and (notice.kind, notice.to) == (
        NoticeKind.reset,
        "owner@example.com",
    )
    token = _token(notice.link, "/password/reset/")
    assert accounts.reset_target(session=session, links=LINKS, token=token).email == notice.to
    assert [ask("owner@example.com").notice is not None for _ in range(3)] == [True, True, False]


def test_reset_link_sets_the_password_once(session: Session, world: World) -> None:
    subject = _user(session, world, "subject")
    version = subject.session_version
    token = accounts.reset_token(user=subject, secret=SECRET)
    # Tokens are signed, not encrypted: the password hash is never inside.
    assert subject.password_hash not in token
    args = {"token": token, "links": LINKS}
    assert accounts.reset_target(session=session, **args).id == subject.id
    done = accounts.reset_password(session=session, new_password="a new passphrase", **args)
    assert done.is_verified  # the link proved the mailbox
    assert done.session_version == version + 1  # every other session ends
    assert accounts.authenticate(session=session, email=subject.email, password="a new passphrase")
    with pytest.raises(Invalid, match="already been used"):
        accounts.reset_password(session=session, new_password="yet another one", **args)


def test_reset_link_dies_with_any_password_change(session: Session, world: World) -> None:
    owner = _user(session, world, "owner")
    token = accounts.reset_token(user=owner, secret=SECRET)
    accounts.change_password(
        session=session,
        actor=owner,
        old_password=PASSWORD,
        new_password="changed by hand",
        confirm="changed by hand",
    )
    with pytest.raises(Invalid, match="already been used"):
        accounts.reset_target(session=session, links=LINKS, token=token)


def test_reset_link_of_a_blocked_account_is_refused(session: Session, world: World) -> None:
    token = accounts.reset_token(user=_user(session, world, "blocked"), secret=SECRET)
    with pytest.raises(Invalid, match="already been used"):
        accounts.reset_target(session=session, links=LINKS, token=token)


def test_reset_link_checks_the_new_password_first(session: Session, world: World) -> None:
    subject = _user(session, world, "subject")
    token = accounts.reset_token(user=subject, secret=SECRET)
    with pytest.raises(BadPassword, match="at least"):
        accounts.reset_password(session=session, links=LINKS, token=token, new_password="short")
    with pytest.raises(BadPassword, match="differ"):
        accounts.reset_password(
            session=session, links=LINKS, token=token, new_password=PASSWORD, confirm="other one"
        )
    # A refused password leaves the link usable; a dead link is Invalid, never BadPassword.
    assert accounts.reset_target(session=session, links=LINKS, token=token)
    with pytest.raises(Invalid, match="not valid") as dead:
        accounts.reset_password(
            session=session, links=LINKS, token="garbage", new_password=PASSWORD
        )
    assert not isinstance(dead.value, BadPassword)


def test_a_verification_token_is_no_reset_token(session: Session, world: World) -> None:
    token = accounts.verification_token(user=_user(session, world, "subject"), secret=SECRET)
    with pytest.raises(Invalid, match="not valid"):
        accounts.reset_target(session=session, links=LINKS, token=token)


def test_change_password_needs_the_current_one(session: Session, world: World, refuse: Any) -> None:
    owner = _user(session, world, "owner")
    refuse(
        Invalid,
        lambda: accounts.change_password(
            session=session,
            actor=owner,
            old_password="not the password",
            new_password="a fine new one",
            confirm="a fine new one",
        ),
        "current password is wrong",
    )
    version = owner.session_version
    accounts.change_password(
        session=session,
        actor=owner,
        old_password=PASSWORD,
        new_password="a fine new one",
        confirm="a fine new one",
    )
    assert owner.session_version == version + 1
    assert accounts.authenticate(session=session, email=owner.email, password="a fine new one")
