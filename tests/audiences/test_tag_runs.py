"""Mailings to tags and to all clients: the audience is worked out when each run starts, and
the suppression list is checked at run start and again just before each message goes out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.engine import Engine

from mailctl.config import Settings
from mailctl.db import session_scope, utcnow
from mailctl.errors import Conflict, Invalid, NotFound
from mailctl.models import Mailing, User
from mailctl.schedule import Clock
from mailctl.services import clients, erasure, mailings, messages, suppressions, tags
from mailctl.services.delivery import run_pass as _run_pass
from tests.support.ledger import runs_of
from tests.support.smtp import Sink

SECRET_KEY = "a-test-secret-key-for-hashing-addresses"


CLOCK = Clock(tz="UTC", period_seconds=None)


def run_pass(engine: Engine, settings: Settings, *, worker: str) -> Any:
    return _run_pass(engine=engine, settings=settings, clock=CLOCK, worker=worker)


def _ledger(engine: Engine, mailing_id: int) -> list[dict[str, Any]]:
    from sqlalchemy import text

    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT run_id, email, state, last_reply FROM deliveries "
                "WHERE mailing_id = :m ORDER BY run_id, email"
            ),
            {"m": mailing_id},
        )
        return [dict(r._mapping) for r in rows]


def _by_run(engine: Engine, mailing_id: int) -> list[dict[str, tuple[str, str | None]]]:
    out: dict[int, dict[str, tuple[str, str | None]]] = {}
    for row in _ledger(engine, mailing_id):
        out.setdefault(row["run_id"], {})[row["email"]] = (row["state"], row["last_reply"])
    return [out[k] for k in sorted(out)]


def _next_week(engine: Engine, mailing_id: int) -> None:
    """The week goes by: the next run is due now."""
    with engine.begin() as conn:
        conn.execute(
            update(Mailing).where(Mailing.id == mailing_id).values(next_run_at=utcnow())  # type: ignore[arg-type]
        )


@pytest.fixture
def shop(
    engine: Engine, make_user: Callable[..., User], sink: Sink, smtp_settings: Any, monkeypatch
) -> tuple[User, Settings]:
    monkeypatch.setenv("MAILCTL_WEB_SECRET_KEY", SECRET_KEY)
    settings = smtp_settings(sink.port)
    return make_user("user", email="shop@example.com"), settings


def _act(engine: Engine, user: User, fn: Callable[..., Any], **kw: Any) -> Any:
    with session_scope(engine) as session:
        actor = session.get(User, user.id)
        return fn(session=session, actor=actor, **kw)


def test_weekly_mailing_to_a_tag_reaches_who_has_it_at_each_run(
    engine: Engine, shop: tuple[User, Settings], sink: Sink
) -> None:
    user, settings = shop
    ann = _act(engine, user, clients.add_client, email="ann@example.com", tags=["news"]).id
    bob = _act(engine, user, clients.add_client, email="bob@example.com", tags=["news"]).id
    _act(engine, user, clients.add_client, email="cat@example.com", tags=["other"])
    eve = _act(engine, user, clients.add_client, email="eve@example.com", tags=["News"]).id
    message = _act(engine, user, messages.add_message, subject="Weekly", body="Hi").id
    mailing = _act(
        engine,
        user,
        mailings.add_mailing,
        clock=CLOCK,
        message_id=message,
        start=utcnow(),
        every="week",
        tags=["news"],
    ).id
    run_pass(engine, settings, worker="t1")
    assert sorted(sink.handler.rcpts()) == ["ann@example.com", "bob@example.com", "eve@example.com"]

    # Between the runs: a new subscriber with the tag, one untagged, one unsubscribed by hand.
    _act(engine, user, clients.add_client, email="dan@example.com", tags=["news", "vip"])
    assert _act(engine, user, tags.untag_client, client_id=bob, names=["news"]) == []
    _act(
        engine,
        user,
        suppressions.add_suppression,
        email="EVE@example.com",
        secret=SECRET_KEY,
        reason="unsubscribed",
    )
    _next_week(engine, mailing)
    sink.handler.envelopes.clear()
    run_pass(engine, settings, worker="t2")

    assert sorted(sink.handler.rcpts()) == ["ann@example.com", "dan@example.com"]
    first, second = _by_run(engine, mailing)
    assert set(first) == {"ann@example.com", "bob@example.com", "eve@example.com"}
    assert second == {
        "ann@example.com": ("sent", second["ann@example.com"][1]),
        "dan@example.com": ("sent", second["dan@example.com"][1]),
        "eve@example.com": ("skipped", "suppressed (unsubscribed)"),
    }
    assert [r["recipients"] for r in runs_of(engine, mailing)] == [3, 3]
    assert ann and eve


def test_all_clients_is_worked_out_at_each_run(
    engine: Engine, shop: tuple[User, Settings], sink: Sink
) -> None:
    user, settings = shop
    _act(engine, user, clients.add_client, email="ann@example.com")
    message = _act(engine, user, messages.add_message, subject="All", body="Hi").id
    mailing = _act(
        engine,
        user,
        mailings.add_mailing,
        clock=CLOCK,
        message_id=message,
        start=utcnow(),
        every="week",
        all_clients=True,
    ).id
    run_pass(engine, settings, worker="t1")
    _act(engine, user, clients.add_client, email="later@example.com")
    with session_scope(engine) as session:
        m = session.get(Mailing, mailing)
        assert m is not None and m.audience == "all"
        assert len(mailings.mailing_client_ids(session=session, mailing=m)) == 2
    _next_week(engine, mailing)
    run_pass(engine, settings, worker="t2")
    assert sorted(sink.handler.rcpts()) == [
        "ann@example.com",
        "ann@example.com",
        "later@example.com",
    ]


def test_suppression_survives_delete_and_reimport(
    engine: Engine, shop: tuple[User, Settings], sink: Sink
) -> None:
    user, settings = shop
    ann = _act(engine, user, clients.add_client, email="ann@example.com").id
    _act(
        engine,
        user,
        suppressions.add_suppression,
        email="ann@example.com",
        secret=SECRET_KEY,
        reason="complaint",
        note="phoned us",
    )
    _act(engine, user, clients.delete_client, client_id=ann)
    report = _act(
        engine,
        user,
        clients.import_clients,
        data=b"email,full_name,tags\nAnn@Example.com,Ann,news\nzoe@example.com,Zoe,news\n",
    )
    assert report.errors == []
    message = _act(engine, user, messages.add_message, subject="S", body="B").id
    mailing = _act(
        engine,
        user,
        mailings.add_mailing,
        clock=CLOCK,
        message_id=message,
        start=utcnow(),
        tags=["news"],
    ).id
    run_pass(engine, settings, worker="t")
    assert sink.handler.rcpts() == ["zoe@example.com"]
    (run,) = _by_run(engine, mailing)
    assert run["Ann@example.com"] == ("skipped", "suppressed (complaint)")


def test_erased_unsubscriber_imported_again_is_still_never_mailed(
    engine: Engine, shop: tuple[User, Settings], sink: Sink
) -> None:
    """The list keeps only the keyed hash: the run start cannot match it by address, the
    check just before sending does."""
    user, settings = shop
    ann = _act(engine, user, clients.add_client, email="ann@example.com").id
    _act(
        engine,
        user,
        suppressions.add_suppression,
        email="ann@example.com",
        secret=SECRET_KEY,
        reason="unsubscribed",
    )
    _act(engine, user, erasure.erase_client, client_id=ann, secret=SECRET_KEY)
    _act(engine, user, clients.add_client, email="ann@example.com")
    message = _act(engine, user, messages.add_message, subject="S", body="B").id
    mailing = _act(
        engine,
        user,
        mailings.add_mailing,
        clock=CLOCK,
        message_id=message,
        start=utcnow(),
        all_clients=True,
    ).id
    run_pass(engine, settings, worker="t")
    assert sink.handler.rcpts() == []
    (run,) = _by_run(engine, mailing)
    assert run == {"ann@example.com": ("skipped", "suppressed (unsubscribed)")}


def test_audience_choices_are_checked(engine: Engine, shop: tuple[User, Settings]) -> None:
    user, _ = shop
    ann = _act(engine, user, clients.add_client, email="ann@example.com", tags=["news"]).id
    message = _act(engine, user, messages.add_message, subject="S", body="B").id
    add = dict(message_id=message, start=utcnow(), every="week", clock=CLOCK)
    with pytest.raises(NotFound, match="tag nope not found"):
        _act(engine, user, mailings.add_mailing, **add, tags=["nope"])
    with pytest.raises(Invalid, match="not several"):
        _act(engine, user, mailings.add_mailing, **add, tags=["news"], client_ids=[ann])
    with pytest.raises(Invalid, match="no ';'"):
        _act(engine, user, clients.add_client, email="x@example.com", tags=["a;b"])
    mailing = _act(engine, user, mailings.add_mailing, **add, tags=["news"]).id
    with pytest.raises(Conflict, match=f"audience of mailing {mailing}"):
        _act(engine, user, tags.delete_tag, name="news")
    _act(engine, user, mailings.edit_mailing, mailing_id=mailing, client_ids=[ann], clock=CLOCK)
    _act(engine, user, tags.delete_tag, name="NEWS")
    assert _act(engine, user, tags.list_tags) == []


def test_complaints_are_lifted_only_by_an_admin_forcing_it(
    engine: Engine, make_user: Callable[..., User]
) -> None:
    user = make_user("user")
    admin = make_user("admin")
    for who in (user, admin):
        _act(
            engine,
            who,
            suppressions.add_suppression,
            email="c@example.com",
            secret=SECRET_KEY,
            reason="complaint",
        )
    rm = dict(email="c@example.com", secret=SECRET_KEY, note="they asked by letter")
    with pytest.raises(Invalid, match="reason must not be empty"):
        _act(engine, user, suppressions.remove_suppression, **rm | {"note": " "})
    for force in (False, True):
        with pytest.raises(Exception, match="admin"):
            _act(engine, user, suppressions.remove_suppression, **rm, force=force)
    with pytest.raises(Exception, match="--force"):
        _act(engine, admin, suppressions.remove_suppression, **rm)
    _act(engine, admin, suppressions.remove_suppression, **rm, force=True)
    # An admin sees every owner's list; the user's own entry stands.
    (left,) = _act(engine, admin, suppressions.list_suppressions)
    assert left.owner_id == user.id
    lifted = [
        e
        for e in _act(engine, admin, suppressions.list_suppressions, include_removed=True)
        if e.owner_id == admin.id
    ]
    assert [e.removed_note for e in lifted] == ["they asked by letter"]
    assert len(_act(engine, user, suppressions.list_suppressions)) == 1
