"""Accounts: creation, roles, blocking, passwords, verification."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING

from sqlalchemy import delete, func
from sqlmodel import Session, select

from mailctl.db import utcnow
from mailctl.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized
from mailctl.models import Mailing, Role, User
from mailctl.services.access import OVERSIGHT_ROLES, ensure_active, require_role
from mailctl.services.validation import clean_email, clean_text
from mailctl.tokens import sign, unsign

if TYPE_CHECKING:
    from passlib.context import CryptContext

PASSWORD_MIN = 8
PASSWORD_MAX = 1024


@cache
def _hasher() -> CryptContext:
    # Loaded on first use: most commands never touch a password, and passlib with argon2
    # costs a CLI command more than its own work.
    from passlib.context import CryptContext

    # argon2id at OWASP's recommended minimum (19 MiB, 2 passes): no length limit or truncation.
    return CryptContext(
        schemes=["argon2"], argon2__memory_cost=19456, argon2__rounds=2, argon2__parallelism=1
    )


@cache
def _dummy_hash() -> str:
    # Verified against when the email is unknown, so both answers take the same time.
    return _hasher().hash("not a real password")


def hash_password(password: str) -> str:
    if len(password) < PASSWORD_MIN:
        raise Invalid(f"password must have at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX:
        raise Invalid(f"password must have at most {PASSWORD_MAX} characters")
    return _hasher().hash(password)


def _find(session: Session, email: str) -> User | None:
    return session.exec(select(User).where(User.email == email.strip().lower())).first()


def _role(value: str) -> str:
    try:
        return Role(value).value
    except ValueError:
        raise Invalid(f"unknown role {value!r}: use user, manager, editor or admin") from None


def _new_user(
    session: Session, *, email: str, password: str, role: str, full_name: str, verified: bool
) -> User:
    address = clean_email(email).lower()
    if _find(session, address) is not None:
        raise Conflict(f"a user with email {address} already exists")
    user = User(
        email=address,
        full_name=clean_text(full_name, field="name", max_len=200, single_line=True),
        password_hash=hash_password(password),
        role=_role(role),
        is_verified=verified,
    )
    session.add(user)
    session.flush()
    return user


def count_users(*, session: Session) -> int:
    return session.exec(select(func.count()).select_from(User)).one()


def create_first_admin(*, session: Session, email: str, password: str) -> User:
    """The admin `mailctl init` creates; only while no user exists."""
    if count_users(session=session):
        raise Conflict("users already exist; the first admin is created only once")
    return _new_user(
        session, email=email, password=password, role="admin", full_name="", verified=True
    )


def first_admin(*, session: Session) -> User:
    user = session.exec(
        select(User).where(User.role == Role.admin.value).order_by(User.id)  # type: ignore[arg-type]
    ).first()
    if user is None:
        raise NotFound("no admin exists: run `mailctl init --admin EMAIL`")
    return user


def resolve_actor(*, session: Session, email: str | None) -> User:
    """The user a CLI command acts as: `--as EMAIL`, else the first admin."""
    if not email:
        user = first_admin(session=session)
    else:
        found = _find(session, email)
        if found is None:
            raise NotFound(f"user {email} not found")
        user = found
    ensure_active(user)
    return user


def register_user(*, session: Session, email: str, password: str, full_name: str = "") -> User:
    """Self-registration: a plain user who must verify the email before logging in."""
    return _new_user(
        session, email=email, password=password, role="user", full_name=full_name, verified=False
    )


def sign_up(
    *, session: Session, email: str, password: str, full_name: str = ""
) -> tuple[User, bool]:
    """The registration form: (the new account, True), or (the existing one, False).

    An address that already has an account costs the same hashing effort as a new one, so the
    answer's timing does not tell which it was; the caller mails either case the same way."""
    existing = _find(session, email)
    if existing is not None:
        hash_password(password)
        return existing, False
    return register_user(session=session, email=email, password=password, full_name=full_name), True


def add_user(
    *,
    session: Session,
    actor: User,
    email: str,
    password: str,
    role: str = "user",
    full_name: str = "",
    verified: bool = True,
) -> User:
    require_role(actor, (Role.admin.value,), "create users")
    return _new_user(
        session, email=email, password=password, role=role, full_name=full_name, verified=verified
    )


def _user_filters(stmt, search: str | None, role: str | None):  # type: ignore[no-untyped-def]
    if search:
        like = f"%{search.lower()}%"
        stmt = stmt.where(
            User.email.like(like) | func.lower(User.full_name).like(like)  # type: ignore[attr-defined]
        )
    if role:
        stmt = stmt.where(User.role == _role(role))
    return stmt


def list_users(
    *,
    session: Session,
    actor: User,
    search: str | None = None,
    role: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> Sequence[User]:
    require_role(actor, OVERSIGHT_ROLES, "list users")
    stmt = _user_filters(select(User), search, role).order_by(User.id)
    if limit is not None:
        stmt = stmt.limit(limit).offset(offset)
    return session.exec(stmt).all()


def count_users_visible(
    *, session: Session, actor: User, search: str | None = None, role: str | None = None
) -> int:
    """How many users `list_users` shows with these filters, without loading them."""
    require_role(actor, OVERSIGHT_ROLES, "list users")
    return session.exec(_user_filters(select(func.count()).select_from(User), search, role)).one()


def get_user(*, session: Session, actor: User, user_id: int) -> User:
    ensure_active(actor)
    if actor.id != user_id:
        require_role(actor, OVERSIGHT_ROLES, "see other users")
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    return user


def find_user(*, session: Session, actor: User, ref: str) -> User:
    """A user by id or by email, for the CLI."""
    if ref.isdigit():
        return get_user(session=session, actor=actor, user_id=int(ref))
    ensure_active(actor)
    user = _find(session, ref)
    if user is None or user.id != actor.id:
        # Checked before "not found" so that a plain user cannot probe which emails have accounts.
        require_role(actor, OVERSIGHT_ROLES, "see other users")
    if user is None:
        raise NotFound(f"user {ref} not found")
    return get_user(session=session, actor=actor, user_id=user.id or 0)


def edit_user(
    *,
    session: Session,
    actor: User,
    user_id: int,
    full_name: str | None = None,
    email: str | None = None,
) -> User:
    ensure_active(actor)
    if actor.id != user_id:
        require_role(actor, (Role.admin.value,), "edit other users")
    user = get_user(session=session, actor=actor, user_id=user_id)
    if full_name is not None:
        user.full_name = clean_text(full_name, field="name", max_len=200, single_line=True)
    if email is not None:
        address = clean_email(email).lower()
        other = _find(session, address)
        if other is not None and other.id != user.id:
            raise Conflict(f"a user with email {address} already exists")
        user.email = address
    session.add(user)
    return user


def _guard_last_admin(session: Session, user: User, action: str) -> None:
    # A blocked admin is not one of the active admins this guard protects.
    if user.role != Role.admin.value or not user.is_active:
        return
    admins = session.exec(
        select(func.count())
        .select_from(User)
        .where(User.role == Role.admin.value, User.is_active == True)  # noqa: E712
    ).one()
    if admins <= 1:
        raise Conflict(f"cannot {action} the last active admin")


def set_blocked(*, session: Session, actor: User, user_id: int, blocked: bool) -> User:
    require_role(actor, OVERSIGHT_ROLES, "block or unblock users")
    user = get_user(session=session, actor=actor, user_id=user_id)
    if user.id == actor.id and blocked:
        raise Conflict("you cannot block yourself")
    if blocked and user.role == Role.admin.value and actor.role != Role.admin.value:
        raise Forbidden("only an admin can block an admin")
    if blocked and user.is_active:
        _guard_last_admin(session, user, "block")
        user.is_active = False
        # Open sessions carry the old version and stop working at their next request.
        user.session_version += 1
    elif not blocked:
        user.is_active = True
    session.add(user)
    return user


def set_role(*, session: Session, actor: User, user_id: int, role: str) -> User:
    require_role(actor, (Role.admin.value,), "change roles")
    user = get_user(session=session, actor=actor, user_id=user_id)
    new_role = _role(role)
    if new_role != user.role:
        _guard_last_admin(session, user, "demote")
        user.role = new_role
    session.add(user)
    return user


def verify_user(*, session: Session, actor: User, user_id: int) -> User:
    require_role(actor, (Role.admin.value,), "verify users by hand")
    user = get_user(session=session, actor=actor, user_id=user_id)
    user.is_verified = True
    session.add(user)
    return user


def set_password(
    *,
    session: Session,
    actor: User,
    user_id: int,
    new_password: str,
    old_password: str | None = None,
) -> User:
    """Users change their own (knowing the old one); admins reset anyone's."""
    ensure_active(actor)
    user = get_user(session=session, actor=actor, user_id=user_id)
    if actor.id != user_id and actor.role != Role.admin.value:
        raise Forbidden("only an admin can set another user's password")
    if old_password is not None and not _hasher().verify(old_password, user.password_hash):
        raise Invalid("the current password is wrong")
    user.password_hash = hash_password(new_password)
    user.session_version += 1
    session.add(user)
    return user


def end_sessions(*, session: Session, actor: User) -> None:
    """Log the actor out everywhere: every open session carries the old version."""
    user = session.get(User, actor.id)
    if user is not None:
        user.session_version += 1
        session.add(user)


def reset_password(*, session: Session, user: User, new_password: str) -> User:
    """Completes an emailed reset: the link was the proof, no actor involved."""
    user.password_hash = hash_password(new_password)
    user.session_version += 1
    session.add(user)
    return user


def delete_user(*, session: Session, actor: User, user_id: int) -> None:
    require_role(actor, (Role.admin.value,), "delete users")
    user = get_user(session=session, actor=actor, user_id=user_id)
    if user.id == actor.id:
        raise Conflict("you cannot delete yourself")
    _guard_last_admin(session, user, "delete")
    # Mailings first: their message link is RESTRICT, which PostgreSQL checks row by row while
    # cascading from the user, so the order of that cascade must not matter.
    session.exec(delete(Mailing).where(Mailing.owner_id == user.id))  # type: ignore[call-overload]
    session.delete(user)


def authenticate(*, session: Session, email: str, password: str) -> User:
    """The user for these credentials; one message for every failure, constant effort."""
    user = _find(session, email or "")
    ok = _hasher().verify(password or "", user.password_hash if user else _dummy_hash())
    if user is None or not ok:
        raise Unauthorized("wrong email or password")
    if not user.is_active:
        raise Forbidden("this account is blocked")
    if not user.is_verified:
        raise Forbidden("verify your email address first: follow the link we sent you")
    user.last_login = utcnow()
    session.add(user)
    return user


def find_by_email(*, session: Session, email: str) -> User | None:
    """For flows that must not reveal whether an account exists (reset, resend)."""
    return _find(session, email or "")


def mark_verified(*, session: Session, user: User) -> User:
    user.is_verified = True
    session.add(user)
    return user


# -- emailed links: verification and password reset ------------------------------------------

_VERIFY = "verify"
_RESET = "reset"
_SPENT = "this link has already been used or is no longer valid"


def _fingerprint(password_hash: str) -> str:
    # Tokens are signed, not encrypted: carry a digest of the hash, never the hash itself.
    return hashlib.sha256(password_hash.encode()).hexdigest()[:24]


def _payload(secret: str, purpose: str, token: str, max_age: int | None) -> dict[str, object]:
    payload = unsign(secret, purpose, token, max_age=max_age)
    if not isinstance(payload, dict):
        raise Invalid("this link is not valid")
    return payload


def verification_token(*, user: User, secret: str) -> str:
    """The token of a verification link: it names the account and the address it confirms."""
    return sign(secret, _VERIFY, {"u": user.id, "e": user.email})


def verification_target(*, session: Session, token: str, secret: str, max_age: int) -> User:
    """The account a verification link confirms; Invalid once it is spent, expired or forged."""
    payload = _payload(secret, _VERIFY, token, max_age)
    user = session.get(User, payload.get("u"))
    # Single use: the token names an unverified account; once verified, it is spent.
    if user is None or user.email != payload.get("e") or user.is_verified:
        raise Invalid(_SPENT)
    return user


def verify_email(*, session: Session, token: str, secret: str, max_age: int) -> User:
    """Follow a verification link: the account's address is confirmed, and the link spent."""
    user = verification_target(session=session, token=token, secret=secret, max_age=max_age)
    return mark_verified(session=session, user=user)


def reset_token(*, user: User, secret: str) -> str:
    """The token of a reset link, bound to the current password so that it works only once."""
    return sign(secret, _RESET, {"u": user.id, "p": _fingerprint(user.password_hash)})


def reset_target(*, session: Session, token: str, secret: str, max_age: int) -> User:
    """The account a reset link is for; Invalid once used (or after any password change)."""
    payload = _payload(secret, _RESET, token, max_age)
    user = session.get(User, payload.get("u"))
    # Bound to the current password: used once (or after any change), the link is dead.
    if user is None or not user.is_active or _fingerprint(user.password_hash) != payload.get("p"):
        raise Invalid(_SPENT)
    return user


def reset_password_with_token(
    *, session: Session, token: str, secret: str, max_age: int, new_password: str
) -> User:
    """Complete an emailed reset: a new password, every session ended, the mailbox proven."""
    user = reset_target(session=session, token=token, secret=secret, max_age=max_age)
    reset_password(session=session, user=user, new_password=new_password)
    return mark_verified(session=session, user=user)  # the link proved the mailbox
