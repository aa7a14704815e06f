"""Accounts: the first admin, the last admin, blocking, passwords and logging in."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import Session, func, select

from mailctl.errors import BadPassword, Conflict, Forbidden, Invalid, Unauthorized, Unverified
from mailctl.models import User
from mailctl.services import accounts, users
from mailctl.services.passwords import PASSWORD_MAX
from tests.support.env import PASSWORD
from tests.support.world import World

LONG_PASSWORD = "".join(chr(ord("a") + i % 26) for i in range(500))


def _count(session: Session) -> int:
    return session.exec(select(func.count()).select_from(User)).one()


# -- the first admin ------------------------------------------------------------------------


def test_first_admin_is_created_only_once(session: Session, refuse: Any) -> None:
    admin = users.create_first_admin(session=session, email="Boss@Example.com", password=PASSWORD)
    assert (admin.email, admin.role, admin.is_verified, admin.is_active) == (
        "boss@example.com",
        "admin",
        True,
        True,
    )
    assert users.first_admin(session=session).id == admin.id
    refuse(
        Conflict,
        lambda: users.create_first_admin(
            session=session, email="second@example.com", password=PASSWORD
        ),
        "first admin is created only once",
    )
    assert _count(session) == 1


def test_first_admin_not_created_when_any_user_exists(session: Session, refuse: Any) -> None:
    accounts.register_user(session=session, email="early@example.com", password=PASSWORD)
    refuse(
        Conflict,
        lambda: users.create_first_admin(session=session, email="a@example.com", password=PASSWORD),
    )


# -- the last active admin ------------------------------------------------------------------


@pytest.fixture
def sole_admin(make_user: Any) -> Any:
    admin = make_user("admin", email="root@example.com")
    make_user("manager", email="boss@example.com")
    return admin


def test_last_admin_cannot_block_themself(session: Session, sole_admin: Any, refuse: Any) -> None:
    uid = sole_admin.id
    refuse(
        Conflict,
        lambda: users.set_blocked(session=session, actor=sole_admin, user_id=uid, blocked=True),
    )


def test_manager_cannot_block_an_admin(session: Session, sole_admin: Any, refuse: Any) -> None:
    manager = users.find_by_email(session=session, email="boss@example.com")
    uid = sole_admin.id
    refuse(
        Forbidden,
        lambda: users.set_blocked(session=session, actor=manager, user_id=uid, blocked=True),
        "only an admin can block an admin",
    )


@pytest.mark.parametrize("role", ["user", "manager", "editor"])
def test_last_admin_cannot_be_demoted(
    session: Session, sole_admin: Any, refuse: Any, role: str
) -> None:
    uid = sole_admin.id
    refuse(
        Conflict,
        lambda: users.set_role(session=session, actor=sole_admin, user_id=uid, role=role),
        "cannot demote the last active admin",
    )


def test_last_admin_cannot_be_deleted(session: Session, sole_admin: Any, refuse: Any) -> None:
    uid = sole_admin.id
    refuse(Conflict, lambda: users.delete_user(session=session, actor=sole_admin, user_id=uid))


def test_guard_counts_only_active_admins(session: Session, make_user: Any, refuse: Any) -> None:
    first = make_user("admin", email="first@example.com")
    second = make_user("admin", email="second@example.com")
    users.set_blocked(session=session, actor=first, user_id=second.id, blocked=True)
    # `first` is now the only active admin: it cannot step down...
    refuse(
        Conflict,
        lambda: users.set_role(session=session, actor=first, user_id=first.id, role="user"),
        "last active admin",
    )
    # ...but the blocked admin can be demoted or deleted: that leaves one active admin.
    assert (
        users.set_role(session=session, actor=first, user_id=second.id, role="user").role == "user"
    )
    users.set_role(session=session, actor=first, user_id=second.id, role="admin")
    users.delete_user(session=session, actor=first, user_id=second.id)
    session.flush()
    assert session.get(User, second.id) is None


def test_with_two_admins_one_may_go(session: Session, make_user: Any) -> None:
    first = make_user("admin", email="first@example.com")
    second = make_user("admin", email="second@example.com")
    assert users.set_role(session=session, actor=first, user_id=second.id, role="editor").role == (
        "editor"
    )
    users.set_role(session=session, actor=first, user_id=second.id, role="admin")
    users.delete_user(session=session, actor=second, user_id=first.id)
    session.flush()
    assert users.first_admin(session=session).id == second.id


def test_unknown_role_is_refused(session: Session, sole_admin: Any, refuse: Any) -> None:
    target = users.find_by_email(session=session, email="boss@example.com")
    assert target is not None
    refuse(
        Invalid,
        lambda: users.set_role(session=session, actor=sole_admin, user_id=target.id, role="root"),
        "unknown role",
    )


# -- blocking -------------------------------------------------------------------------------


def test_blocking_bumps_the_session_version(session: Session, world: World) -> None:
    manager = world.users["manager"]
    target = session.get(User, world.users["owner"].id)
    assert target is not None
    version = target.session_version
    users.set_blocked(session=session, actor=manager, user_id=target.id or 0, blocked=True)
    assert (target.is_active, target.session_version) == (False, version + 1)
    # Blocking twice is not a second bump; unblocking does not revive old sessions.
    users.set_blocked(session=session, actor=manager, user_id=target.id or 0, blocked=True)
    users.set_blocked(session=session, actor=manager, user_id=target.id or 0, blocked=False)
    assert (target.is_active, target.session_version) == (True, version + 1)


def test_blocked_user_cannot_act_or_log_in(session: Session, world: World) -> None:
    blocked = world.users["blocked"]
    with pytest.raises(Forbidden):
        users.resolve_actor(session=session, email=blocked.email)
    with pytest.raises(Forbidden, match="blocked"):
        accounts.authenticate(session=session, email=blocked.email, password=PASSWORD)


def test_password_change_bumps_the_session_version(session: Session, world: World) -> None:
    owner = world.users["owner"]
    uid = owner.id or 0
    version = owner.session_version
    user = users.set_password(
        session=session,
        actor=owner,
        user_id=uid,
        new_password="another good one",
        old_password=PASSWORD,
    )
    assert user.session_version == version + 1


def test_wrong_old_password_changes_nothing(session: Session, world: World, refuse: Any) -> None:
    owner = world.users["owner"]
    uid = owner.id or 0
    refuse(
        Invalid,
        lambda: users.set_password(
            session=session,
            actor=owner,
            user_id=uid,
            new_password="another good one",
            old_password="not my password",
        ),
        "current password is wrong",
    )


# -- logging in -----------------------------------------------------------------------------


def test_authenticate_success_records_the_login(session: Session, world: World) -> None:
    user = accounts.authenticate(session=session, email="  OWNER@example.com", password=PASSWORD)
    assert user.id == world.users["owner"].id
    assert user.last_login is not None


def test_wrong_password_and_unknown_email_look_the_same(session: Session, world: World) -> None:
    errors = []
    for email, password in [
        ("owner@example.com", "wrong password!"),
        ("nobody@example.com", PASSWORD),
        ("nobody@example.com", "wrong password!"),
        ("", ""),
    ]:
        with pytest.raises(Exception) as info:
            accounts.authenticate(session=session, email=email, password=password)
        errors.append((type(info.value), str(info.value)))
    assert set(errors) == {(Unauthorized, "wrong email or password")}


def test_unverified_user_cannot_log_in_until_verified(session: Session) -> None:
    user = accounts.register_user(session=session, email="new@example.com", password=PASSWORD)
    assert (user.role, user.is_verified) == ("user", False)
    with pytest.raises(Unverified, match="verify your email"):
        accounts.authenticate(session=session, email="new@example.com", password=PASSWORD)
    accounts.mark_verified(session=session, user=user)
    assert (
        accounts.authenticate(session=session, email="new@example.com", password=PASSWORD) is user
    )


def test_unverified_refusal_only_after_the_password(session: Session, world: World) -> None:
    # Without the right password, an unverified account looks like any other failure.
    with pytest.raises(Unauthorized, match="wrong email or password"):
        accounts.authenticate(session=session, email="subject@example.com", password="guess guess")


def test_admin_verifies_by_hand(session: Session, world: World) -> None:
    subject = world.users["subject"]
    users.verify_user(session=session, actor=world.users["admin"], user_id=subject.id or 0)
    assert accounts.authenticate(session=session, email=subject.email, password=PASSWORD).id == (
        subject.id
    )


# -- passwords ------------------------------------------------------------------------------


def test_passwords_are_hashed_with_argon2(session: Session) -> None:
    user = accounts.register_user(session=session, email="hash@example.com", password=PASSWORD)
    assert user.password_hash.startswith("$argon2")
    assert PASSWORD not in user.password_hash


def test_long_passwords_are_not_truncated(session: Session) -> None:
    user = accounts.register_user(session=session, email="long@example.com", password=LONG_PASSWORD)
    accounts.mark_verified(session=session, user=user)
    assert accounts.authenticate(session=session, email=user.email, password=LONG_PASSWORD) is user
    for wrong in (LONG_PASSWORD[:-1] + "!", LONG_PASSWORD[:-1], "!" + LONG_PASSWORD[1:]):
        with pytest.raises(Unauthorized):
            accounts.authenticate(session=session, email=user.email, password=wrong)
    # bcrypt would stop at 72 bytes; argon2 must not.
    with pytest.raises(Unauthorized):
        accounts.authenticate(session=session, email=user.email, password=LONG_PASSWORD[:72])


@pytest.mark.parametrize(
    ("password", "match"),
    [("short", "at least 8"), ("x" * (PASSWORD_MAX + 1), "at most")],
)
def test_password_length_limits(session: Session, refuse: Any, password: str, match: str) -> None:
    refuse(
        BadPassword,
        lambda: accounts.register_user(session=session, email="p@example.com", password=password),
        match,
    )


def test_user_email_is_unique_without_regard_to_case(
    session: Session, world: World, refuse: Any
) -> None:
    refuse(
        Conflict,
        lambda: accounts.register_user(
            session=session, email="Owner@EXAMPLE.com", password=PASSWORD
        ),
        "already exists",
    )
    refuse(
        Conflict,
        lambda: users.edit_user(
            session=session,
            actor=world.users["other"],
            user_id=world.users["other"].id or 0,
            email="OWNER@example.com",
        ),
    )


def test_plain_user_cannot_probe_which_emails_exist(session: Session, world: World) -> None:
    other = world.users["other"]
    seen = set()
    for ref in ("owner@example.com", "nobody@example.com"):
        with pytest.raises(Exception) as info:
            users.find_user(session=session, actor=other, ref=ref)
        seen.add((type(info.value), str(info.value)))
    assert len(seen) == 1 and next(iter(seen))[0] is Forbidden
    assert users.find_user(session=session, actor=other, ref="other@example.com").id == other.id
