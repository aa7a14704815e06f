"""Layouts, previews and test sends by role (SPEC: layouts and test sends are a user's own,
an admin's for all; a manager oversees mailings only), and the rules a layout must keep."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from mailctl.errors import Conflict, Forbidden, Invalid, NotFound
from mailctl.services import layouts, messages, previews, test_sends
from mailctl.services.mailings import add_mailing

GOOD = '<table><tr><td>{{ content }}</td></tr></table><a href="{{ unsubscribe_url }}">Leave</a>'


@pytest.fixture
def people(session: Session):  # type: ignore[no-untyped-def]
    from mailctl.models import User

    roles = {"owner": "user", "other": "user", "manager": "manager", "editor": "editor"}
    roles |= {"admin": "admin", "blocked": "user"}
    found = {}
    for name, role in roles.items():
        user = User(
            email=f"{name}@example.com",
            role=role,
            is_active=name != "blocked",
            is_verified=True,
            password_hash="x",
        )
        session.add(user)
        found[name] = user
    session.flush()
    return found


def test_layouts_are_their_owners_and_the_admins(session: Session, people) -> None:
    owner = people["owner"]
    layout = layouts.add_layout(session=session, actor=owner, name="Brand", html=GOOD)
    assert layouts.get_layout(session=session, actor=people["admin"], layout_id=layout.id).id
    with pytest.raises(NotFound, match=rf"^layout {layout.id} not found$"):
        layouts.get_layout(session=session, actor=people["other"], layout_id=layout.id)
    with pytest.raises(NotFound):
        layouts.edit_layout(session=session, actor=people["other"], layout_id=layout.id, name="X")
    with pytest.raises(NotFound):
        layouts.delete_layout(session=session, actor=people["other"], layout_id=layout.id)
    for role in ("manager", "editor", "blocked"):
        with pytest.raises(Forbidden):
            layouts.list_layouts(session=session, actor=people[role])
        with pytest.raises(Forbidden):
            layouts.add_layout(session=session, actor=people[role], name="N", html=GOOD)
    assert [x.id for x in layouts.list_layouts(session=session, actor=people["other"])] == []
    # Another user's message cannot use this layout either, even by its id.
    with pytest.raises(NotFound):
        messages.add_message(
            session=session, actor=people["other"], subject="S", body="B", layout_id=layout.id
        )


@pytest.mark.parametrize(
    ("html", "match"),
    [
        ("<p>no content</p>", r"needs \{\{ content \}\} exactly once"),
        ("{{ content }}{{ content }}<a href='{{ unsubscribe_url }}'>u</a>", "2 times"),
        ("<p>{{ content }}</p>", "needs an unsubscribe link"),
        ("<p>{{ content }} {{ unsubscribe_url }}</p>", "needs an unsubscribe link"),  # not a link
        ("{{ content }}<a href='{{ unsubscribe_url }}'>u</a>{{ client.password }}", "unknown"),
        ("{{ content }}<a href='{{ unsubscribe_url }}'>u</a>{% for x in 'a'*9**9 %}", "layout"),
        ("{{ content }}<a href='{{ unsubscribe_url }}'>u</a>{{ 'x' * 10**9 }}", "bytes"),
    ],
)
def test_a_layout_without_its_parts_or_within_no_budget_is_refused(
    session: Session, people, html: str, match: str
) -> None:
    with pytest.raises(Invalid, match=match):
        layouts.add_layout(session=session, actor=people["owner"], name="Bad", html=html)


def test_a_layout_in_use_is_kept_and_names_are_unique(session: Session, people) -> None:
    owner = people["owner"]
    layout = layouts.add_layout(session=session, actor=owner, name="Brand", html=GOOD)
    with pytest.raises(Conflict, match="exists already"):
        layouts.add_layout(session=session, actor=owner, name="Brand", html=GOOD)
    message = messages.add_message(
        session=session, actor=owner, subject="S", body="*B*", layout_id=layout.id
    )
    with pytest.raises(Conflict, match=f"used by message {message.id}"):
        layouts.delete_layout(session=session, actor=owner, layout_id=layout.id)
    with pytest.raises(Invalid, match="a text message has no layout"):
        messages.add_message(
            session=session, actor=owner, subject="S", body="B", format="text", layout_id=layout.id
        )
    messages.edit_message(session=session, actor=owner, message_id=message.id, layout_id=None)
    layouts.delete_layout(session=session, actor=owner, layout_id=layout.id)


def test_previews_and_test_sends_by_role(session: Session, people, settings) -> None:
    owner = people["owner"]
    message = messages.add_message(session=session, actor=owner, subject="S", body="# Hi")
    for role in ("owner", "admin"):
        rendered = previews.preview_for_client(
            session=session,
            actor=people[role],
            settings=settings,
            message_id=message.id,
            client_id=None,
        )
        assert ">Hi</h1>" in (rendered.html or "")
    with pytest.raises(NotFound):
        previews.preview_for_client(
            session=session,
            actor=people["other"],
            settings=settings,
            message_id=message.id,
            client_id=None,
        )
    for role in ("manager", "editor", "blocked"):
        with pytest.raises(Forbidden):
            previews.preview_for_client(
                session=session,
                actor=people[role],
                settings=settings,
                message_id=message.id,
                client_id=None,
            )
        with pytest.raises(Forbidden):
            test_sends.send_test(
                session=session, actor=people[role], settings=settings, message_id=message.id
            )
    with pytest.raises(NotFound):
        test_sends.send_test(
            session=session, actor=people["other"], settings=settings, message_id=message.id
        )


def test_a_manager_sees_a_mailings_message_but_not_the_message_itself(
    session: Session, people, settings
) -> None:
    from datetime import timedelta

    from mailctl.db import utcnow
    from mailctl.schedule import Clock
    from mailctl.services.clients import add_client

    owner = people["owner"]
    message = messages.add_message(session=session, actor=owner, subject="S", body="# Hi")
    client = add_client(session=session, actor=owner, email="c@example.com")
    mailing = add_mailing(
        session=session,
        actor=owner,
        message_id=message.id,
        client_ids=[client.id],
        start=utcnow() + timedelta(days=1),
        every="week",
        clock=Clock.from_settings(settings),
    )
    seen, rendered = previews.preview_mailing_message(
        session=session, actor=people["manager"], settings=settings, mailing_id=mailing.id
    )
    assert seen.id == message.id and ">Hi</h1>" in (rendered.html or "")
    with pytest.raises(NotFound):
        previews.preview_mailing_message(
            session=session, actor=people["other"], settings=settings, mailing_id=mailing.id
        )
    with pytest.raises(Forbidden):
        messages.get_message(session=session, actor=people["manager"], message_id=message.id)
