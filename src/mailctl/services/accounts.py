"""Account flows: sign up, confirm the address, log in and out, reset a forgotten password.

Each flow is one function that takes what the form said and returns what happens next: the
account, or the email to send (a `Notice`, which the adapter sends after answering, so that a
slow mail server never holds a request or a transaction). The answers never tell whether an
address has an account: the same page, the same effort, the same counters move either way.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from sqlmodel import Session

from mailctl.config import Settings
from mailctl.db import utcnow
from mailctl.errors import Forbidden, Invalid, Throttled, Unauthorized, Unverified
from mailctl.models import User
from mailctl.sending import notices
from mailctl.sending.links import Links
from mailctl.services.passwords import check_password, hash_password, verify_password
from mailctl.services.users import find_by_email, new_user, set_password
from mailctl.services.validation import clean_email, clean_text
from mailctl.tokens import sign, unsign

LOGIN_FAILURES = 5  # wrong passwords for one address from one host, then a pause
THROTTLE_SECONDS = 15 * 60
MAILS_PER_WINDOW = 3  # verification / reset emails to one address per window
_VERIFY = "verify"  # the purposes links are signed for: one never passes for another
_RESET = "reset"
_SPENT = "this link has already been used or is no longer valid"


class Counters(Protocol):
    """Shared counters that expire (the disk cache): every worker and process sees them."""

    def bump(self, key: str, window: int) -> int: ...

    def count(self, key: str) -> int: ...

    def forget(self, key: str) -> None: ...


class NoticeKind(StrEnum):
    verification = "verification"
    reset = "reset"
    already_registered = "already_registered"


@dataclass(frozen=True)
class Notice:
    """An account email a flow decided on: to whom, which one, and its links."""

    kind: NoticeKind
    to: str
    link: str  # the verification or reset link; the log-in page for "already registered"
    reset_link: str = ""  # "already registered" also offers to reset the password


@dataclass(frozen=True)
class Sent:
    """The answer to a form that may send an email: the address as understood, and the email
    (None when there is nothing to send, or the address had its share of emails)."""

    address: str
    notice: Notice | None


def send_notice(*, settings: Settings, notice: Notice) -> None:
    """Send the email a flow decided on. Never raises: a failure is logged by `notices`."""
    if notice.kind is NoticeKind.verification:
        notices.send_verification(settings=settings, to=notice.to, link=notice.link)
    elif notice.kind is NoticeKind.reset:
        notices.send_reset(settings=settings, to=notice.to, link=notice.link)
    else:
        notices.send_already_registered(
            settings=settings, to=notice.to, login_url=notice.link, reset_url=notice.reset_link
        )


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _may_mail(counters: Counters, purpose: str, address: str) -> bool:
    """At most a few emails per address per window: the forms must not flood an inbox.

    Called for every address asked about, whether or not it has an account: a counter that
    only moved for real accounts would tell them apart (by its timing, or its cache entry)."""
    key = f"throttle:mail:{purpose}:{_digest(address)}"
    return counters.bump(key, THROTTLE_SECONDS) <= MAILS_PER_WINDOW


# -- sign up and confirm the address ----------------------------------------------------------


def register_user(*, session: Session, email: str, password: str, full_name: str = "") -> User:
    """Self-registration: a plain user who must verify the email before logging in."""
    return new_user(
        session, email=email, password=password, role="user", full_name=full_name, verified=False
    )


def verification_token(*, user: User, secret: str) -> str:
    """The token of a verification link: it names the account and the address it confirms."""
    return sign(secret, _VERIFY, {"u": user.id, "e": user.email})


def _verification(links: Links, user: User) -> Notice:
    token = verification_token(user=user, secret=links.secret)
    return Notice(NoticeKind.verification, user.email, links.url(f"/verify/{token}"))


def sign_up(
    *,
    session: Session,
    links: Links,
    counters: Counters,
    email: str,
    password: str,
    confirm: str | None = None,
    full_name: str = "",
) -> Sent:
    """The registration form. A new account (or one whose first link was lost) gets a
    verification link; a confirmed one is told it already exists, with the log-in and reset
    pages. The caller shows the same page whichever it was."""
    # Every check that does not need the database comes first, so that the answer to a bad
    # form never depends on whether the address already has an account.
    address = clean_email(email).lower()
    name = clean_text(full_name, field="name", max_len=200, single_line=True)
    check_password(password, confirm=confirm)
    user = find_by_email(session=session, email=address)
    if user is None:
        user = register_user(session=session, email=address, password=password, full_name=name)
        notice = _verification(links, user)
    else:
        # The same hashing effort as a new account: the timing does not tell them apart.
        hash_password(password)
        if not user.is_verified and user.is_active:
            notice = _verification(links, user)
        else:
            notice = Notice(
                NoticeKind.already_registered,
                user.email,
                links.url("/login"),
                links.url("/password/forgot"),
            )
    allowed = _may_mail(counters, "register", address)
    return Sent(address, notice if allowed else None)


def resend_verification(*, session: Session, links: Links, counters: Counters, email: str) -> Sent:
    """Another verification link, for an active account that has not confirmed yet."""
    address = (email or "").strip().lower()
    user = find_by_email(session=session, email=address)
    allowed = _may_mail(counters, "verify", address)
    if allowed and user is not None and user.is_active and not user.is_verified:
        return Sent(address, _verification(links, user))
    return Sent(address, None)


def _fingerprint(password_hash: str) -> str:
    # Tokens are signed, not encrypted: carry a digest of the hash, never the hash itself.
    return _digest(password_hash)[:24]


def _payload(links: Links, purpose: str, token: str) -> dict[str, object]:
    payload = unsign(links.secret, purpose, token, max_age=links.max_age)
    if not isinstance(payload, dict):
        raise Invalid("this link is not valid")
    return payload


def verification_target(*, session: Session, links: Links, token: str) -> User:
    """The account a verification link confirms; Invalid once it is spent, expired or forged."""
    payload = _payload(links, _VERIFY, token)
    user = session.get(User, payload.get("u"))
    # Single use: the token names an unverified account; once verified, it is spent.
    if user is None or user.email != payload.get("e") or user.is_verified:
        raise Invalid(_SPENT)
    return user


def mark_verified(*, session: Session, user: User) -> User:
    user.is_verified = True
    session.add(user)
    return user


def verify_email(*, session: Session, links: Links, token: str) -> User:
    """Follow a verification link: the account's address is confirmed, and the link spent."""
    user = verification_target(session=session, links=links, token=token)
    return mark_verified(session=session, user=user)


# -- log in and out ----------------------------------------------------------------------------


def authenticate(*, session: Session, email: str, password: str) -> User:
    """The user for these credentials; one message for every failure, constant effort.

    Blocked and unconfirmed accounts are told so only after the right password: that tells
    nothing to someone guessing."""
    user = find_by_email(session=session, email=email)
    ok = verify_password(password or "", user.password_hash if user else None)
    if user is None or not ok:
        raise Unauthorized("wrong email or password")
    if not user.is_active:
        raise Forbidden("this account is blocked")
    if not user.is_verified:
        raise Unverified("verify your email address first: follow the link we sent you")
    user.last_login = utcnow()
    session.add(user)
    return user


def _login_key(email: str, host: str) -> str:
    return "throttle:login:" + _digest(f"{email.strip().lower()}|{host}")


def log_in(*, session: Session, counters: Counters, email: str, password: str, host: str) -> User:
    """The log-in form, from `host`: a few wrong passwords for one address, then a pause
    (Throttled) before the next try is even checked."""
    key = _login_key(email, host)
    if counters.count(key) >= LOGIN_FAILURES:
        raise Throttled(
            "too many failed attempts; wait 15 minutes and try again",
            retry_after=THROTTLE_SECONDS,
        )
    try:
        user = authenticate(session=session, email=email, password=password)
    except Unauthorized:
        counters.bump(key, THROTTLE_SECONDS)
        raise
    counters.forget(key)
    return user


def end_sessions(*, session: Session, actor: User) -> None:
    """Log the actor out everywhere: every open session carries the old version."""
    user = session.get(User, actor.id)
    if user is not None:
        user.session_version += 1
        session.add(user)


# -- passwords ---------------------------------------------------------------------------------


def reset_token(*, user: User, secret: str) -> str:
    """The token of a reset link, bound to the current password so that it works only once."""
    return sign(secret, _RESET, {"u": user.id, "p": _fingerprint(user.password_hash)})


def request_reset(*, session: Session, links: Links, counters: Counters, email: str) -> Sent:
    """The "forgot my password" form: a reset link for an active account."""
    address = (email or "").strip().lower()
    user = find_by_email(session=session, email=address)
    allowed = _may_mail(counters, "reset", address)
    if allowed and user is not None and user.is_active:
        link = links.url(f"/password/reset/{reset_token(user=user, secret=links.secret)}")
        return Sent(address, Notice(NoticeKind.reset, user.email, link))
    return Sent(address, None)


def reset_target(*, session: Session, links: Links, token: str) -> User:
    """The account a reset link is for; Invalid once used (or after any password change)."""
    payload = _payload(links, _RESET, token)
    user = session.get(User, payload.get("u"))
    # Bound to the current password: used once (or after any change), the link is dead.
    if user is None or not user.is_active or _fingerprint(user.password_hash) != payload.get("p"):
        raise Invalid(_SPENT)
    return user


def reset_password(
    *,
    session: Session,
    links: Links,
    token: str,
    new_password: str,
    confirm: str | None = None,
) -> User:
    """Complete an emailed reset: a new password, every session ended, the mailbox proven.

    The password is checked first (BadPassword), the link after (Invalid): a refused
    password leaves the link usable."""
    check_password(new_password, confirm=confirm)
    user = reset_target(session=session, links=links, token=token)
    user.password_hash = hash_password(new_password)
    user.session_version += 1
    return mark_verified(session=session, user=user)  # the link proved the mailbox


def change_password(
    *, session: Session, actor: User, old_password: str, new_password: str, confirm: str
) -> User:
    """The account page's form: the current password, and the new one twice."""
    check_password(new_password, confirm=confirm)
    return set_password(
        session=session,
        actor=actor,
        user_id=actor.id or 0,
        new_password=new_password,
        old_password=old_password,
    )
