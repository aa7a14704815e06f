"""The home figure "unique client emails across mailings" is kept by the database's triggers
(migration 0018); after every kind of change, made the way a user makes it, it must equal the
figure counted from the audiences, for everyone and for each owner."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from mailctl.models import User
from mailctl.services import figures
from tests.support.cli import FUTURE, USER1, USER2, new_id, ok


def kept_and_exact(engine: Engine) -> tuple[dict[str, int], dict[str, int]]:
    kept, exact = {}, {}
    with Session(engine) as session:
        active = select(User).where(User.role == "user", User.is_active == True)  # noqa: E712
        owners = session.exec(active).all()
        for who in [None, *owners]:
            key = who.email if who else "everyone"
            kept[key] = figures.stats(session=session, actor=who).unique_clients
            exact[key] = figures.count_exactly(session=session, actor=who)
    return kept, exact


def check(engine: Engine, everyone: int, **owners: int) -> None:
    kept, exact = kept_and_exact(engine)
    assert kept == exact
    assert kept["everyone"] == everyone
    for name, n in owners.items():
        assert kept[f"{name}@example.com"] == n, name


def mailing(cli, message: str, *audience: str, as_: str) -> str:  # type: ignore[no-untyped-def]
    return new_id(
        cli("mailing", "add", "--message", message, *audience, "--start", FUTURE, as_=as_)
    )


def test_the_kept_figure_follows_every_change(cli, users, engine: Engine, tmp_path: Path) -> None:
    add = lambda email, who: new_id(cli("client", "add", email, as_=who))  # noqa: E731
    a1, b1, c1 = add("a@example.com", USER1), add("b@example.com", USER1), add("c@x.org", USER1)
    a2, d2 = add("A@example.com", USER2), add("d@example.com", USER2)
    check(engine, 0, user1=0, user2=0)
    m1 = new_id(cli("message", "add", "--subject", "S", "--body", "B", as_=USER1))
    m2 = new_id(cli("message", "add", "--subject", "S", "--body", "B", as_=USER2))

    linked = mailing(cli, m1, "--client", a1, as_=USER1)
    check(engine, 1, user1=1, user2=0)
    everyone2 = mailing(cli, m2, "--all-clients", as_=USER2)
    check(engine, 2, user1=1, user2=2)  # a@ is on both lists: one address
    add("e@example.com", USER2)  # a new client of an "all clients" audience
    check(engine, 3, user1=1, user2=3)

    ok(cli("client", "tag", b1, "news", as_=USER1))
    tagged = mailing(cli, m1, "--tag", "news", as_=USER1)
    check(engine, 4, user1=2, user2=3)
    ok(cli("client", "tag", c1, "news", "vip", as_=USER1))
    check(engine, 5, user1=3, user2=3)
    ok(cli("client", "untag", b1, "news", as_=USER1))
    check(engine, 4, user1=2, user2=3)

    ok(cli("client", "edit", c1, "--email", "d@example.com", as_=USER1))  # now shared with user2
    check(engine, 3, user1=2, user2=3)
    ok(cli("client", "edit", a2, "--email", "z@example.com", as_=USER2))
    check(engine, 4, user1=2, user2=3)

    ok(cli("mailing", "edit", linked, "--client", b1, as_=USER1))  # a1 out, b1 in
    check(engine, 4, user1=2, user2=3)
    ok(cli("mailing", "edit", tagged, "--all-clients", as_=USER1))
    check(engine, 5, user1=3, user2=3)
    ok(cli("mailing", "edit", tagged, "--tag", "vip", as_=USER1))
    check(engine, 4, user1=2, user2=3)
    ok(cli("mailing", "edit", everyone2, "--client", d2, as_=USER2))
    check(engine, 2, user1=2, user2=1)  # b@ and d@

    ok(cli("mailing", "rm", tagged, as_=USER1))
    check(engine, 2, user1=1, user2=1)
    ok(cli("client", "rm", d2, as_=USER2))
    check(engine, 1, user1=1, user2=0)

    csv = tmp_path / "more.csv"
    csv.write_text("email,full_name,tags\nn1@example.com,N,vip\nn2@example.com,N,\nbad,N,vip\n")
    cli("client", "import", str(csv), as_=USER1)
    ok(cli("mailing", "edit", linked, "--tag", "vip", as_=USER1))
    check(engine, 2, user1=2, user2=0)  # c1 (d@) and n1 have vip; b1 is out

    ok(cli("client", "erase", c1, "--yes", as_=USER1))
    check(engine, 1, user1=1, user2=0)
    everyone1 = mailing(cli, m1, "--all-clients", as_=USER1)
    check(engine, 4, user1=4, user2=0)  # a, b, n1, n2
    ok(cli("tag", "rm", "news", as_=USER1))
    ok(cli("mailing", "rm", everyone1, as_=USER1))
    check(engine, 1, user1=1, user2=0)

    mailing(cli, m2, "--all-clients", as_=USER2)
    check(engine, 3, user1=1, user2=2)  # a2 (now z@) and e2 are left on user2's list
    ok(cli("user", "rm", USER2))
    check(engine, 1, user1=1)


def test_the_counters_are_right_on_a_database_upgraded_with_clients(settings) -> None:
    """A database with clients and mailings before migration 0018: counted once by it."""
    from mailctl import migrations
    from mailctl.db import make_engine

    engine = make_engine(settings, create=True)
    try:
        migrations.upgrade(engine, "0016")
        with engine.begin() as conn:
            for owner in (1, 2):
                conn.execute(
                    text(
                        "INSERT INTO users (id, email, role, full_name, password_hash,"
                        " is_active, is_verified, date_joined, session_version) VALUES"
                        " (:id, :email, 'user', '', '', TRUE, TRUE, CURRENT_TIMESTAMP, 0)"
                    ),
                    {"id": owner, "email": f"user{owner}@example.com"},
                )
                conn.execute(
                    text(
                        "INSERT INTO messages (id, owner_id, subject, body, format, created_at,"
                        " updated_at) VALUES (:id, :id, 'S', 'B', 'text', CURRENT_TIMESTAMP,"
                        " CURRENT_TIMESTAMP)"
                    ),
                    {"id": owner},
                )
            for i, (owner, email) in enumerate(
                [(1, "a@example.com"), (1, "b@example.com"), (2, "a@example.com")], start=1
            ):
                conn.execute(
                    text(
                        "INSERT INTO clients (id, owner_id, email, email_key, full_name,"
                        " comment, attrs, created_at) VALUES (:id, :owner, :email, :email,"
                        " '', '', '{}', CURRENT_TIMESTAMP)"
                    ),
                    {"id": i, "owner": owner, "email": email},
                )
            conn.execute(
                text(
                    "INSERT INTO mailings (id, owner_id, message_id, every, audience, start_at,"
                    " status, is_enabled, created_at, updated_at) VALUES (1, 2, 2, 'once', 'all',"
                    " CURRENT_TIMESTAMP, 'created', TRUE, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP),"
                    " (2, 1, 1, 'once', 'clients', CURRENT_TIMESTAMP, 'created', TRUE,"
                    " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
            )
            conn.execute(text("INSERT INTO mailing_clients (mailing_id, client_id) VALUES (2, 2)"))
        migrations.upgrade(engine)
        kept, exact = kept_and_exact(engine)
        assert kept == exact == {"everyone": 2, "user1@example.com": 1, "user2@example.com": 1}
        # and back: the column goes without rebuilding clients (whose cascades would empty
        # the links on SQLite)
        migrations.downgrade(engine, "0016")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM mailing_clients")).scalar_one() == 1
            assert conn.execute(text("SELECT count(*) FROM clients")).scalar_one() == 3
    finally:
        engine.dispose()


def tag_id(engine: Engine, name: str) -> int:
    with engine.connect() as conn:
        found = conn.execute(text("SELECT id FROM tags WHERE name = :n"), {"n": name})
        return int(found.scalar_one())


def all_clients_mailing(engine: Engine, like: str) -> tuple[Any, dict[str, Any]]:
    """An INSERT of an "all clients" mailing made like mailing `like`, and its values."""
    with engine.connect() as conn:
        template = (
            conn.execute(text("SELECT * FROM mailings WHERE id = :id"), {"id": int(like)})
            .mappings()
            .one()
        )
    values = {c: v for c, v in template.items() if c != "id"} | {"audience": "all"}
    names = ", ".join(values)
    return text(f"INSERT INTO mailings ({names}) VALUES ({', '.join(':' + c for c in values)})"), (
        values
    )


def test_concurrent_changes_of_one_owner_keep_the_figure_exact(cli, users, engine: Engine) -> None:
    """Three connections change who is reached at the same time (an "all clients" mailing
    added and removed, a tag put on and taken off a client a tag mailing is addressed to, a
    client linked and unlinked): each trigger recomputes from what the others committed."""
    import threading

    ids = [new_id(cli("client", "add", f"c{i}@example.com", as_=USER1)) for i in range(6)]
    ok(cli("client", "tag", ids[0], "news", as_=USER1))
    message = new_id(cli("message", "add", "--subject", "S", "--body", "B", as_=USER1))
    mailing(cli, message, "--tag", "news", as_=USER1)
    linked = mailing(cli, message, "--client", ids[0], as_=USER1)
    owner = users["user1"].id
    tag = tag_id(engine, "news")
    add_all, everyone = all_clients_mailing(engine, linked)
    errors: list[BaseException] = []

    def repeat(*statements: tuple[str | object, dict[str, object]]) -> None:
        try:
            for _ in range(15):
                for statement, params in statements:
                    with engine.begin() as conn:
                        conn.execute(
                            text(statement) if isinstance(statement, str) else statement, params
                        )
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [
        threading.Thread(
            target=repeat,
            args=(
                (add_all, everyone),
                ("DELETE FROM mailings WHERE owner_id = :o AND audience = 'all'", {"o": owner}),
            ),
        ),
        threading.Thread(
            target=repeat,
            args=(
                (
                    "INSERT INTO client_tags (client_id, tag_id) VALUES (:c, :t)",
                    {"c": ids[1], "t": tag},
                ),
                (
                    "DELETE FROM client_tags WHERE client_id = :c AND tag_id = :t",
                    {"c": ids[1], "t": tag},
                ),
            ),
        ),
        threading.Thread(
            target=repeat,
            args=(
                (
                    "INSERT INTO mailing_clients (mailing_id, client_id) VALUES (:m, :c)",
                    {"m": int(linked), "c": ids[2]},
                ),
                (
                    "DELETE FROM mailing_clients WHERE mailing_id = :m AND client_id = :c",
                    {"m": int(linked), "c": ids[2]},
                ),
            ),
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    check(engine, 1, user1=1)  # c0 alone: tagged and linked


def test_a_client_edited_then_tagged_beside_an_owner_wide_recompute(cli, users, engine) -> None:  # type: ignore[no-untyped-def]
    """A updates a client (its custom fields, as `client edit` does before it relinks the
    tags) and then tags it; meanwhile B adds an "all clients" mailing, which recomputes every
    client of the owner. With the lock taken only in the AFTER triggers, B held it and waited
    for A's client row while A waited for it: a deadlock on PostgreSQL."""
    import threading

    ids = [new_id(cli("client", "add", f"c{i}@example.com", as_=USER1)) for i in range(3)]
    ok(cli("client", "tag", ids[2], "news", as_=USER1))
    message = new_id(cli("message", "add", "--subject", "S", "--body", "B", as_=USER1))
    mailing(cli, message, "--tag", "news", as_=USER1)
    add_all, everyone = all_clients_mailing(
        engine, mailing(cli, message, "--client", ids[2], as_=USER1)
    )
    tag = tag_id(engine, "news")
    errors: list[BaseException] = []

    def add_mailing() -> None:
        try:
            with engine.begin() as conn:
                conn.execute(add_all, everyone)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    b = threading.Thread(target=add_mailing)
    with engine.connect() as a, a.begin():
        a.execute(text("UPDATE clients SET comment = 'x' WHERE id = :c"), {"c": int(ids[0])})
        b.start()
        time.sleep(0.5)  # B is at its recompute (or waiting for the lock) by now
        a.execute(
            text("INSERT INTO client_tags (client_id, tag_id) VALUES (:c, :t)"),
            {"c": int(ids[0]), "t": tag},
        )
    b.join(timeout=60)
    assert not b.is_alive() and errors == []
    check(engine, 3, user1=3)
