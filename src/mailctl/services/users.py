"""Users as others manage them: creation, roles, blocking, passwords set by hand.

What a person does with their own account (sign up, confirm, log in, reset) is in
`services/accounts.py`."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from mailctl.errors import Conflict, Forbidden, Invalid, NotFound
from mailctl.models import Mailing, Role, User
from mailctl.services.access import OVERSIGHT_ROLES, Q, ensure_active, require_role
from mailctl.services.passwords import hash_password, verify_password
from mailctl.services.validation import clean_email, clean_text


def _find(session: Session, email: str) -> User | None:
    return session.exec(select(User).where(User.email == email.strip().lower())).first()


def find_by_email(*, session: Session, email: str) -> User | None:
    """The account of an address, if any: for flows that must not tell (reset, resend)."""
    return _find(session, email or "")


def _role(value: str) -> str:
    try:
        return Role(value).value
    except ValueError:
        raise Invalid(f"unknown role {value!r}: use user, manager, editor or admin") from None


def new_user(
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
    return new_user(
        session, email=email, password=password, role="admin", full_name="", verified=True
    )


def first_admin(*, session: Session) -> User:
    user = session.exec(
        select(User).where(User.role == Role.admin.value).order_by(col(User.id))
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
    return new_user(
        session, email=email, password=password, role=role, full_name=full_name, verified=verified
    )


def _user_filters(stmt: Q, search: str | None, role: str | None) -> Q:
    if search:
        like = f"%{search.lower()}%"
        stmt = stmt.where(col(User.email).like(like) | func.lower(User.full_name).like(like))
    if role:
        stmt = stmt.where(col(User.role) == _role(role))
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
    stmt = _user_filters(select(User), search, role).order_by(col(User.id))
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
    if old_password is not None and not verify_password(old_password, user.password_hash):
        raise Invalid("the current password is wrong")
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
    session.execute(delete(Mailing).where(col(Mailing.owner_id) == user.id))
    session.delete(user)
