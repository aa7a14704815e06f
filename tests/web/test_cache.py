"""Caching: home figures and blog pages from the disk cache, dropped on change; exact views."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import event
from starlette.testclient import TestClient

from mailctl.db import session_scope, utcnow
from mailctl.models import BlogPost, User
from mailctl.schedule import Clock
from mailctl.services import blog, clients, mailings, messages
from mailctl.web.state import panel_of

# The clock every call here runs on: UTC wall time, real periods.
CLOCK = Clock(tz="UTC", period_seconds=None)


class Statements:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        self.seen.append(statement)

    def take(self) -> list[str]:
        seen, self.seen = self.seen, []
        return seen


@pytest.fixture
def sql(app) -> Iterator[Statements]:  # type: ignore[no-untyped-def]
    """Every SQL statement the app's own engine runs."""
    recorder = Statements()
    event.listen(panel_of(app).engine, "before_cursor_execute", recorder)
    yield recorder
    event.remove(panel_of(app).engine, "before_cursor_execute", recorder)


def _counts(statements: list[str]) -> list[str]:
    return [s for s in statements if "count(" in s.lower()]


def _figure(text: str, name: str) -> int:
    marker = f'id="{name}">'
    return int(text.split(marker, 1)[1].split("<", 1)[0])


def _new_mailing(engine, owner_email: str = "owner@example.com") -> None:  # type: ignore[no-untyped-def]
    """A mailing (and its message and client) created through the services, as the CLI would."""
    from sqlmodel import select

    with session_scope(engine) as s:
        owner = s.exec(select(User).where(User.email == owner_email)).first()
        if owner is None:
            owner = User(email=owner_email, role="user", is_verified=True, password_hash="x")
            s.add(owner)
            s.flush()
        message = messages.add_message(session=s, actor=owner, subject="Hi", body="Hello")
        client = clients.add_client(
            session=s, actor=owner, email=f"c{utcnow().timestamp()}@example.com"
        )
        mailings.add_mailing(
            session=s,
            actor=owner,
            message_id=message.id,
            start=utcnow() + timedelta(days=1),
            client_ids=[client.id],
            clock=CLOCK,
        )


def test_second_home_hit_is_served_from_the_cache(client, sql) -> None:
    first = client.get("/")
    assert first.status_code == 200
    assert _counts(sql.take()), "the first hit computes the figures"
    second = client.get("/")
    assert second.status_code == 200
    statements = sql.take()
    assert _counts(statements) == []
    assert statements == []  # anonymous: not even the random posts are queried again
    assert _figure(second.text, "total-mailings") == _figure(first.text, "total-mailings")


def test_new_mailing_shows_after_invalidation(app, client, sql) -> None:
    assert _figure(client.get("/").text, "total-mailings") == 0
    _new_mailing(panel_of(app).engine)  # the commit hook drops the "stats" entries
    text = client.get("/").text
    assert _figure(text, "total-mailings") == 1
    assert _figure(text, "unique-clients") == 1
    sql.take()
    client.get("/")
    assert _counts(sql.take()) == []  # cached again


def test_change_from_another_process_shows_within_the_lifetime(client, engine) -> None:
    # `engine` is not the app's: like a CLI in another process, its commits reach no hook here.
    assert _figure(client.get("/").text, "total-mailings") == 0
    _new_mailing(engine)
    assert _figure(client.get("/").text, "total-mailings") == 0  # still the cached figure
    with time_machine.travel(datetime.now(UTC) + timedelta(seconds=61), tick=False):
        assert _figure(client.get("/").text, "total-mailings") == 1


def test_no_cache_when_the_lifetime_is_zero(settings, engine, monkeypatch) -> None:
    from mailctl.web.app import create_app

    app = create_app(settings.with_overrides("cache", ttl_seconds=0))
    recorder = Statements()
    event.listen(panel_of(app).engine, "before_cursor_execute", recorder)
    with TestClient(app) as c:
        c.get("/")
        recorder.take()
        c.get("/")
        assert _counts(recorder.take())


def _published(engine, title: str = "Cached post") -> int:  # type: ignore[no-untyped-def]
    with session_scope(engine) as s:
        post = BlogPost(title=title, content="Body", published_at=utcnow() - timedelta(hours=1))
        s.add(post)
        s.flush()
        return post.id


def test_blog_list_is_cached_and_dropped_on_change(app, client, sql) -> None:
    post_id = _published(panel_of(app).engine)
    assert "Cached post" in client.get("/blog").text
    sql.take()
    assert "Cached post" in client.get("/blog").text
    assert sql.take() == []
    with session_scope(panel_of(app).engine) as s:
        editor = User(email="ed@example.com", role="editor", password_hash="x")
        s.add(editor)
        s.flush()
        blog.edit_post(session=s, actor=editor, post_id=post_id, title="Renamed post")
    text = client.get("/blog").text
    assert "Renamed post" in text and "Cached post" not in text


def test_view_counts_are_exact_and_do_not_drop_the_cache(app, client, sql) -> None:
    post_id = _published(panel_of(app).engine)
    for n in range(1, 21):
        response = client.get(f"/blog/{post_id}")
        assert f'id="views">{n}<' in response.text
    # The page itself came from the cache all along: only the counter touched the table.
    statements = sql.take()
    contents = [s for s in statements if "blog_posts.content" in s]
    # One read per hit is count_view's existence check; the page was filled once, not 20 times.
    assert len(contents) == 20 + 1
    assert panel_of(app).cache.raw().get(f"blog:post:{post_id}") is not None
    with session_scope(panel_of(app).engine, readonly=True) as s:
        assert s.get(BlogPost, post_id).views == 20


def test_view_counts_exact_under_concurrent_hits(app, client) -> None:
    post_id = _published(panel_of(app).engine)

    def hits(_: int) -> list[int]:
        # Not `with`: that would run the app's shutdown (and dispose of its engine) per thread.
        c = TestClient(app)
        try:
            return [c.get(f"/blog/{post_id}").status_code for _ in range(5)]
        finally:
            c.close()

    with ThreadPoolExecutor(4) as pool:
        codes = [code for batch in pool.map(hits, range(4)) for code in batch]
    assert codes == [200] * 20
    with session_scope(panel_of(app).engine, readonly=True) as s:
        assert s.get(BlogPost, post_id).views == 20
    assert 'id="views">21<' in client.get(f"/blog/{post_id}").text


def test_home_posts_follow_blog_changes(app, client) -> None:
    assert "Fresh news" not in client.get("/").text
    _published(panel_of(app).engine, "Fresh news")
    assert "Fresh news" in client.get("/").text


def test_a_mailing_added_from_the_cli_drops_the_cached_home_figures(client, cli) -> None:
    """The CLI is another process in real life; its commits evict the same disk cache."""
    first = _figure(client.get("/").text, "total-mailings")
    assert _figure(client.get("/").text, "total-mailings") == first  # now served from the cache
    assert cli("client", "add", "cli-client@example.com").exit_code == 0
    assert cli("message", "add", "--subject", "Hi", "--body", "Hello").exit_code == 0
    added = cli(
        "mailing", "add", "--message", "1", "--all-clients", "--start", "+1d", "--every", "once"
    )
    assert added.exit_code == 0, added.output
    assert _figure(client.get("/").text, "total-mailings") == first + 1


def test_a_cache_that_cannot_be_cleared_leaves_a_change_made(app, caplog) -> None:  # type: ignore[no-untyped-def]
    """The change is committed when the hook runs: an exception there would show an error page
    for a change that was made (and the user would make it twice). A warning instead."""
    from pathlib import Path

    from sqlmodel import select

    with open(Path(panel_of(app).cache.directory) / "cache.db", "r+b") as damaged:
        damaged.write(b"not a database" * 100)
    caplog.set_level(logging.WARNING, logger="mailctl.cache")
    # A fresh thread, as a request's: diskcache opens its SQLite file once per thread.
    with ThreadPoolExecutor(1) as pool:
        post_id = pool.submit(_published, panel_of(app).engine).result()
    with session_scope(panel_of(app).engine) as s:
        assert s.exec(select(BlogPost.id)).all() == [post_id]
    [record] = [r for r in caplog.records if r.name == "mailctl.cache"]
    assert record.getMessage() == (
        f"cannot clear the cache in {panel_of(app).cache.directory} (cache.dir): file is not a"
        " database; pages may be up to 60s old"
    )
