"""raw_write(): the sender's short transactions below SQLAlchemy, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

from mailctl.db import is_sqlite, raw_write


def _name(engine: Engine, user_id: int) -> str:
    with engine.connect() as conn:
        return str(conn.execute(text(f"SELECT full_name FROM users WHERE id = {user_id}")).scalar())


def test_statements_commit_together(engine: Engine, make_user) -> None:  # type: ignore[no-untyped-def]
    user = make_user()
    with engine.connect() as conn:
        with raw_write(conn) as cur:
            cur.execute(f"UPDATE users SET full_name = 'First' WHERE id = {user.id}")
            cur.execute(f"UPDATE users SET full_name = full_name || ' Second' WHERE id = {user.id}")
        assert not conn.in_transaction()
    assert _name(engine, user.id) == "First Second"


def test_a_failing_statement_rolls_back_the_whole_transaction(engine: Engine, make_user) -> None:  # type: ignore[no-untyped-def]
    user = make_user()
    with engine.connect() as conn:
        with pytest.raises(IntegrityError), raw_write(conn) as cur:
            cur.execute(f"UPDATE users SET full_name = 'half' WHERE id = {user.id}")
            cur.execute(f"UPDATE users SET role = 'no-such-role' WHERE id = {user.id}")
        # The same connection goes on: SQLAlchemy transactions and raw ones alike.
        with conn.begin():
            assert conn.execute(text("SELECT count(*) FROM users")).scalar() == 1
        with raw_write(conn) as cur:
            cur.execute(f"UPDATE users SET full_name = 'after' WHERE id = {user.id}")
    assert _name(engine, user.id) == "after"


def test_a_python_error_rolls_back_and_passes_through(engine: Engine, make_user) -> None:  # type: ignore[no-untyped-def]
    user = make_user()
    with engine.connect() as conn:
        with pytest.raises(KeyError), raw_write(conn) as cur:
            cur.execute(f"UPDATE users SET full_name = 'half' WHERE id = {user.id}")
            raise KeyError("boom")
        # Read on the same connection: an open transaction would still see its own write.
        with conn.begin():
            name = conn.execute(text(f"SELECT full_name FROM users WHERE id = {user.id}"))
            assert name.scalar() == ""
    assert _name(engine, user.id) == ""


def test_refuses_to_nest_in_a_sqlalchemy_transaction(engine: Engine) -> None:
    with (
        engine.connect() as conn,
        conn.begin(),
        pytest.raises(RuntimeError, match="outside any transaction"),
        raw_write(conn),
    ):
        pass


def test_sqlite_writers_take_the_lock_up_front(engine: Engine, make_user) -> None:  # type: ignore[no-untyped-def]
    """BEGIN IMMEDIATE, as conn.begin() does: a second writer waits instead of failing."""
    if not is_sqlite(engine):
        pytest.skip("SQLite's locking")
    user = make_user()
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        with engine.connect() as conn, raw_write(conn) as cur:
            cur.execute(f"UPDATE users SET full_name = 'first' WHERE id = {user.id}")
            inside.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    assert inside.wait(5)
    with engine.connect() as conn:
        conn.connection.dbapi_connection.execute("PRAGMA busy_timeout = 50")  # type: ignore[union-attr]
        with pytest.raises(DBAPIError, match="locked"), raw_write(conn) as cur:
            cur.execute("SELECT 1")  # even a reader-looking transaction wants the write lock
    release.set()
    holder.join()
    assert _name(engine, user.id) == "first"
