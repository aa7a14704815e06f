"""What the panel's pages (and the CLI's lists) get from the services: emailed links, the rows
of the lists with their counts, the form choices, paging in SQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlmodel import Session

from mailctl.db import utcnow
from mailctl.errors import Invalid, NotFound
from mailctl.models import (
    BlogPost,
    Client,
    Delivery,
    DeliveryAttempt,
    Mailing,
    MailingClient,
    MailingRun,
    User,
)
from mailctl.services import blog, clients, mailing_rows, mailings, messages, reports, users
from mailctl.tokens import sign
from tests.support.world import World

SECRET = "a test secret that is long enough"
DAY = 24 * 3600


@contextmanager
def counted(session: Session) -> Iterator[list[str]]:
    """The SQL statements the session runs inside the block."""
    statements: list[str] = []
    engine = session.get_bind()

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", note)


def _user(session: Session, world: World, name: str) -> User:
    user = session.get(User, world.users[name].id)
    assert user is not None
    return user


# -- unsubscribe links ------------------------------------------------------------------------


def test_unsubscribe_link(session: Session, world: World, settings: Any) -> None:
    from mailctl.sending.links import Links

    client_id = world.clients["owner"]
    # The link exactly as the sending engine puts it in a message.
    links = Links.from_settings(settings)
    token = links.unsubscribe_url(client_id).rsplit("/", 1)[1]
    assert token == sign(links.secret, "unsubscribe", client_id)
    secret = links.secret
    target = clients.unsubscribe_target(session=session, token=token, secret=secret)
    assert target is not None and target.unsubscribed_at is None
    done = clients.unsubscribe(session=session, token=token, secret=secret)
    assert done is not None and done.unsubscribed_at is not None
    # Harmless to repeat; a deleted client is no error.
    assert clients.unsubscribe(session=session, token=token, secret=secret) is not None
    session.delete(done)
    session.flush()
    assert clients.unsubscribe_target(session=session, token=token, secret=secret) is None
    assert clients.unsubscribe(session=session, token=token, secret=secret) is None


@pytest.mark.parametrize(
    "token",
    [
        sign("another secret", "unsubscribe", 1),
        sign(SECRET, "verify", 1),
        sign(SECRET, "unsubscribe", {"u": 1}),
        "garbage",
    ],
)
def test_forged_unsubscribe_links_are_refused(session: Session, world: World, token: str) -> None:
    with pytest.raises(Invalid, match="not valid"):
        clients.unsubscribe(session=session, token=token, secret=SECRET)


def test_unsubscribe_links_do_not_expire(session: Session, world: World) -> None:
    from itsdangerous import URLSafeTimedSerializer

    serializer = URLSafeTimedSerializer(SECRET, salt="mailctl.unsubscribe")
    old = serializer.dumps(world.clients["owner"])
    assert clients.unsubscribe(session=session, token=old, secret=SECRET) is not None


# -- CSV import --------------------------------------------------------------------------------


def test_import_looks_up_existing_addresses_once(session: Session, world: World) -> None:
    owner = _user(session, world, "owner")
    rows = "".join(f"new{i}@example.com,N{i},\n" for i in range(50))
    data = f"email,full_name,comment\nCLIENT-OF-OWNER@example.com,Dup,\n{rows}".encode()
    with counted(session) as statements:
        report = clients.import_clients(session=session, actor=owner, data=data)
    assert report.added == 50
    assert report.errors == [(2, "client CLIENT-OF-OWNER@example.com already exists")]
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) <= 2, selects


def test_import_sees_other_owners_addresses_as_free(session: Session, world: World) -> None:
    other = _user(session, world, "other")
    data = b"email\nclient-of-owner@example.com\nx@example.com\nX@example.com\n"
    report = clients.import_clients(session=session, actor=other, data=data)
    assert report.added == 2
    assert [c.email for c in clients.list_clients(session=session, actor=other)][-2:] == [
        "client-of-owner@example.com",
        "x@example.com",
    ]
    assert report.errors == [(4, "client X@example.com already exists")]


# -- mailing rows ------------------------------------------------------------------------------


def _more_mailings(session: Session, world: World, count: int) -> list[int]:
    """`count` more mailings of the owner, mailing i with i + 1 clients."""
    owner_id = world.users["owner"].id or 0
    start = utcnow() + timedelta(days=1)
    extra = [
        Client(owner_id=owner_id, email=f"c{i}@example.com", email_key=f"c{i}@example.com")
        for i in range(count)
    ]
    session.add_all(extra)
    session.flush()
    ids = []
    for i in range(count):
        mailing = Mailing(
            owner_id=owner_id,
            message_id=world.mailing_messages["owner"],
            every="week",
            start_at=start,
            next_run_at=start,
        )
        session.add(mailing)
        session.flush()
        session.add_all(
            MailingClient(mailing_id=mailing.id or 0, client_id=c.id or 0) for c in extra[: i + 1]
        )
        ids.append(mailing.id or 0)
    session.flush()
    return ids


def test_mailing_rows_for_the_owner(session: Session, world: World) -> None:
    extra = _more_mailings(session, world, 3)
    owner = _user(session, world, "owner")
    rows = mailing_rows.list_mailing_rows(session=session, actor=owner)
    assert [r.mailing.id for r in rows] == [world.mailings["owner"], *extra]
    assert [r.client_count for r in rows] == [1, 1, 2, 3]
    assert {r.subject for r in rows} == {"Used owner"}
    assert {r.owner_email for r in rows} == {None}  # one's own mailings need no owner column


@pytest.mark.parametrize("role", ["manager", "admin"])
def test_mailing_rows_for_oversight_name_the_owner(
    session: Session, world: World, role: str
) -> None:
    rows = mailing_rows.list_mailing_rows(session=session, actor=_user(session, world, role))
    assert {r.mailing.id: r.owner_email for r in rows} == {
        mailing_id: f"{name}@example.com" for name, mailing_id in world.mailings.items()
    }
    assert {r.mailing.id: r.subject for r in rows} == {
        mailing_id: f"Used {name}" for name, mailing_id in world.mailings.items()
    }


def test_mailing_rows_page_and_filter(session: Session, world: World) -> None:
    extra = _more_mailings(session, world, 4)
    owner = _user(session, world, "owner")
    page = mailing_rows.list_mailing_rows(session=session, actor=owner, limit=2, offset=2)
    assert [(r.mailing.id, r.client_count) for r in page] == [(extra[1], 2), (extra[2], 3)]
    session.get(Mailing, extra[0]).is_enabled = False  # type: ignore[union-attr]
    session.flush()
    disabled = mailing_rows.list_mailing_rows(session=session, actor=owner, status="disabled")
    assert [r.mailing.id for r in disabled] == [extra[0]]
    with pytest.raises(Invalid, match="unknown status"):
        mailing_rows.list_mailing_rows(session=session, actor=owner, status="paused")


def test_mailing_rows_take_the_same_queries_for_any_number(session: Session, world: World) -> None:
    admin = _user(session, world, "admin")
    with counted(session) as few:
        mailing_rows.list_mailing_rows(session=session, actor=admin)
    _more_mailings(session, world, 20)
    with counted(session) as many:
        rows = mailing_rows.list_mailing_rows(session=session, actor=admin)
    assert len(rows) == len(world.mailings) + 20
    assert len(many) == len(few) <= 3


def test_mailing_row_for_the_detail_page(session: Session, world: World) -> None:
    manager = _user(session, world, "manager")
    row = mailing_rows.get_mailing_row(
        session=session, actor=manager, mailing_id=world.mailings["owner"]
    )
    assert (row.subject, row.owner_email, row.client_count) == (
        "Used owner",
        "owner@example.com",
        1,
    )


def test_client_counts(session: Session, world: World) -> None:
    extra = _more_mailings(session, world, 2)
    assert mailing_rows.client_counts(session=session, mailing_ids=[]) == {}
    assert mailing_rows.client_counts(session=session, mailing_ids=[*extra, 999_999]) == {
        extra[0]: 1,
        extra[1]: 2,
        999_999: 0,
    }
    mailing = session.get(Mailing, extra[1])
    assert mailing is not None
    assert mailing_rows.client_count(session=session, mailing=mailing) == 2


def test_recent_mailings_newest_first(session: Session, world: World) -> None:
    extra = _more_mailings(session, world, 6)
    owner = _user(session, world, "owner")
    recent = mailings.recent_mailings(session=session, actor=owner, count=5)
    assert [m.id for m in recent] == list(reversed(extra))[:5]


# -- form choices ------------------------------------------------------------------------------


def test_admin_editing_gets_the_owners_choices_only(session: Session, world: World) -> None:
    admin = _user(session, world, "admin")
    form = mailings.edit_mailing_form(
        session=session, actor=admin, mailing_id=world.mailings["owner"]
    )
    owner_id = world.users["owner"].id
    assert form.mailing is not None and form.mailing.id == world.mailings["owner"]
    assert form.client_ids == [world.clients["owner"]]
    assert {m.owner_id for m in form.messages} == {owner_id}
    assert [c.id for c in form.clients] == [world.clients["owner"]]
    new = mailings.new_mailing_form(session=session, actor=admin)
    assert new.mailing is None and new.client_ids == []
    assert {m.owner_id for m in new.messages} == {admin.id}
    assert [c.id for c in new.clients] == [world.clients["admin"]]


def test_form_choices_filter_in_sql(session: Session, world: World) -> None:
    admin = _user(session, world, "admin")
    with counted(session) as statements:
        mailings.mailing_form_choices(
            session=session, actor=admin, owner_id=world.users["owner"].id or 0
        )
    assert len(statements) == 2
    assert all("owner_id" in s for s in statements)


def test_preview_clients_are_the_message_owners(session: Session, world: World) -> None:
    admin = _user(session, world, "admin")
    found = messages.preview_clients(
        session=session, actor=admin, message_id=world.messages["owner"], limit=10
    )
    assert [c.id for c in found] == [world.clients["owner"]]


# -- paging in SQL -----------------------------------------------------------------------------


def test_users_page_and_count(session: Session, world: World) -> None:
    manager = _user(session, world, "manager")
    everyone = users.list_users(session=session, actor=manager)
    page = users.list_users(session=session, actor=manager, limit=2, offset=3)
    assert [u.id for u in page] == [u.id for u in everyone[3:5]]
    assert users.count_users_visible(session=session, actor=manager) == len(everyone)
    assert users.count_users_visible(session=session, actor=manager, role="user") == len(
        users.list_users(session=session, actor=manager, role="user")
    )
    assert users.count_users_visible(session=session, actor=manager, search="OWN") == 1
    with pytest.raises(Invalid, match="unknown role"):
        users.count_users_visible(session=session, actor=manager, role="boss")


def test_posts_page_count_and_state(session: Session, world: World) -> None:
    editor = _user(session, world, "editor")
    now = utcnow()
    session.add_all(
        [
            BlogPost(author_id=editor.id, title="Out", content="x", published_at=now),
            BlogPost(
                author_id=editor.id, title="Soon", content="x", published_at=now + timedelta(1)
            ),
        ]
    )
    session.flush()
    everything = blog.list_posts(session=session, actor=editor)
    assert [p.title for p in everything] == ["Soon", "Out", "Hello"]
    assert [p.title for p in blog.list_posts(session=session, actor=editor, limit=1, offset=1)] == [
        "Out"
    ]
    assert blog.count_posts(session=session, actor=editor) == 3
    assert [blog.post_state(p, now + timedelta(seconds=1)) for p in everything] == [
        "scheduled",
        "published",
        "draft",
    ]


# -- the attempts log, page by page ------------------------------------------------------------


def _log(session: Session, world: World, n: int) -> list[str]:
    """n attempts of the owner's mailing, a minute apart; every 4th failed. Newest first."""
    mailing_id = world.mailings["owner"]
    now = utcnow()
    run = MailingRun(mailing_id=mailing_id, scheduled_at=now, recipients=1)
    session.add(run)
    session.flush()
    row = Delivery(run_id=run.id or 0, mailing_id=mailing_id, email="x@example.com", state="sent")
    session.add(row)
    session.flush()
    session.add_all(
        DeliveryAttempt(
            delivery_id=row.id or 0,
            mailing_id=mailing_id,
            run_id=run.id or 0,
            email=f"r{i:03d}@example.com",
            attempted_at=now - timedelta(minutes=n - i),
            status="failed" if i % 4 == 0 else "sent",
        )
        for i in range(n)
    )
    session.flush()
    return [f"r{i:03d}@example.com" for i in reversed(range(n))]


def _page(session: Session, world: World, **kw: Any) -> reports.AttemptsPage:
    owner = _user(session, world, "owner")
    return reports.attempts_page(
        session=session, actor=owner, mailing_id=world.mailings["owner"], **kw
    )


def _emails(page: reports.AttemptsPage) -> list[str]:
    return [a.email for a in page.attempts]


def test_attempts_pages_walk_older_and_back_by_cursor(session: Session, world: World) -> None:
    newest_first = _log(session, world, 120)
    first = _page(session, world)
    assert _emails(first) == newest_first[:50]
    assert (first.page, first.pages, first.total, first.capped) == (1, 3, 120, False)
    assert first.newest is None and first.newer is None
    assert first.older is not None and first.older["page"] == "2"
    second = _page(session, world, page=2, before=first.older["before"])
    assert _emails(second) == newest_first[50:100]
    assert second.newest == {} and second.newer is not None
    third = _page(session, world, page=3, before=(second.older or {})["before"])
    assert _emails(third) == newest_first[100:] and third.older is None
    back = _page(session, world, page=2, after=(third.newer or {})["after"])
    assert _emails(back) == _emails(second) and back.page == 2
    top = _page(session, world, page=1, after=(back.newer or {})["after"])
    assert _emails(top) == _emails(first) and top.page == 1 and top.newer is None


def test_attempts_pages_keep_the_status_filter(session: Session, world: World) -> None:
    _log(session, world, 240)
    failed = _page(session, world, status="failed")
    assert failed.total == 60 and {a.status for a in failed.attempts} == {"failed"}
    assert failed.older is not None and failed.older["status"] == "failed"
    deeper = _page(session, world, status="failed", page=2, before=failed.older["before"])
    assert deeper.newest == {"status": "failed"}
    with pytest.raises(Invalid, match="unknown status"):
        _page(session, world, status="bogus")


def test_attempts_page_by_number_and_nonsense_cursors(session: Session, world: World) -> None:
    newest_first = _log(session, world, 120)
    by_offset = _page(session, world, page=2)  # a typed ?page=2 still works
    assert _emails(by_offset) == newest_first[50:100] and by_offset.page == 2
    for junk in ("", "garbage", "2030-01-01T00:00:00_1", "2030-01-01T00:00:00+00:00_" + "9" * 30):
        assert _emails(_page(session, world, before=junk, after=junk)) == newest_first[:50]


def test_attempts_count_stops_at_the_cap(session: Session, world: World) -> None:
    _log(session, world, 60)
    page = _page(session, world, count_cap=40)
    assert page.capped and page.pages is None and page.total == 41
    assert len(page.attempts) == 50


def test_attempts_page_of_another_users_mailing_is_not_found(
    session: Session, world: World
) -> None:
    with pytest.raises(NotFound):
        reports.attempts_page(
            session=session,
            actor=_user(session, world, "other"),
            mailing_id=world.mailings["owner"],
        )
