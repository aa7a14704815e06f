"""What pages offer comes from the same rules the services enforce.

For every actor of the world and every object, each capability is compared with what the
service does when asked (in a savepoint rolled back afterwards): a page never shows a button
the service refuses, and never hides one it would accept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlmodel import Session

from mailctl.errors import Conflict, Forbidden, Invalid, NotFound
from mailctl.models import Mailing, User
from mailctl.schedule import Clock
from mailctl.services import blog, mailings, messages, users
from mailctl.services.access import Capabilities, capabilities
from tests.support.world import ACTORS, ROLE_OF, World

CLOCK = Clock(tz="Europe/Berlin", period_seconds=None)


def _accepted(session: Session, call: Callable[[], Any]) -> bool:
    savepoint = session.begin_nested()
    try:
        call()
        session.flush()
        return True
    except (Forbidden, NotFound, Conflict, Invalid):
        return False
    finally:
        savepoint.rollback()


def _load(session: Session, world: World, name: str) -> User:
    user = session.get(User, world.users[name].id)
    assert user is not None
    return user


def _caps(session: Session, world: World, actor: str) -> tuple[User, Capabilities]:
    user = _load(session, world, actor)
    return user, capabilities(user)


@pytest.mark.parametrize("actor", ACTORS)
def test_area_capabilities_match_the_services(session: Session, world: World, actor: str) -> None:
    user, caps = _caps(session, world, actor)
    subject = world.users["subject"].id or 0
    checks = {
        "can_edit_content": lambda: messages.check_may_write(actor=user),
        "can_view_mailings": lambda: mailings.list_mailings(session=session, actor=user),
        "can_manage_users": lambda: users.list_users(session=session, actor=user),
        "can_set_roles": lambda: users.set_role(
            session=session, actor=user, user_id=subject, role="editor"
        ),
        "can_edit_blog": lambda: blog.check_may_manage(actor=user),
    }
    got = {name: getattr(caps, name) for name in checks}
    assert got == {name: _accepted(session, call) for name, call in checks.items()}


@pytest.mark.parametrize("actor", ACTORS)
def test_mailing_capabilities_match_the_services(
    session: Session, world: World, actor: str
) -> None:
    user, caps = _caps(session, world, actor)
    for owner, mailing_id in world.mailings.items():
        mailing = session.get(Mailing, mailing_id)
        assert mailing is not None
        checks = {
            "can_edit_mailing": lambda: mailings.edit_mailing(
                session=session, actor=user, mailing_id=mailing_id, every="week", clock=CLOCK
            ),
            "can_send_mailing": lambda: mailings.require_sendable(
                session=session, actor=user, mailing_id=mailing_id
            ),
            "can_disable": lambda: mailings.set_enabled(
                session=session, actor=user, mailing_id=mailing_id, enabled=False
            ),
        }
        got = {name: getattr(caps, name)(mailing) for name in checks}
        expected = {name: _accepted(session, call) for name, call in checks.items()}
        assert got == expected, f"{actor} on {owner}'s mailing"


def test_a_disabled_mailing_is_editable_but_not_sendable(session: Session, world: World) -> None:
    owner, caps = _caps(session, world, "owner")
    mailing = mailings.set_enabled(
        session=session, actor=owner, mailing_id=world.mailings["owner"], enabled=False
    )
    assert caps.can_edit_mailing(mailing) and caps.can_disable(mailing)
    assert not caps.can_send_mailing(mailing)
    with pytest.raises(Invalid, match="enable it first"):
        mailings.require_sendable(session=session, actor=owner, mailing_id=mailing.id or 0)


@pytest.mark.parametrize("actor", ACTORS)
def test_block_buttons_match_the_service(session: Session, world: World, actor: str) -> None:
    user, caps = _caps(session, world, actor)
    for name in ROLE_OF:
        person = _load(session, world, name)
        offered = caps.can_block(person)
        blocked = not person.is_active
        accepted = _accepted(
            session,
            lambda: users.set_blocked(
                session=session, actor=user, user_id=person.id or 0, blocked=not blocked
            ),
        )
        assert offered == accepted, f"{actor} {'unblocking' if blocked else 'blocking'} {name}"


def test_nobody_logged_in_may_do_nothing() -> None:
    caps = capabilities(None)
    assert not any(
        (
            caps.can_edit_content,
            caps.can_view_mailings,
            caps.can_manage_users,
            caps.can_set_roles,
            caps.can_edit_blog,
        )
    )
    mailing = Mailing(owner_id=1, message_id=1, start_at=None)  # type: ignore[arg-type]
    assert not caps.can_edit_mailing(mailing) and not caps.can_disable(mailing)
