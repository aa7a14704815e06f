"""Engine, sessions and the column types every model shares."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import DateTime, event
from sqlalchemy.engine import Connection, CursorResult, Engine, Result, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session, SQLModel, create_engine

from mailctl.config import Settings
from mailctl.errors import ConfigError, DatabaseError, NoDatabase

# Stable constraint names, so migrations can name what they drop on any database.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes everywhere: naive UTC text in SQLite, timestamptz in PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(settings: Settings, *, create: bool = False) -> Engine:
    """The engine for database.url. A SQLite file that does not exist is made (with its
    directory) only with `create` (`init`, `db upgrade`, the demo); otherwise connecting
    raises NoDatabase and nothing is written."""
    url_text = settings.database.url
    try:
        url = make_url(url_text)
    except Exception:
        raise ConfigError(f"database.url is not a valid database URL: {url_text!r}") from None
    db = settings.database
    if url.get_backend_name() == "sqlite":
        busy_ms = db.busy_timeout_ms
        connect_args = {"timeout": busy_ms / 1000, "check_same_thread": False}
        path = _sqlite_file(url.database)
        if path is not None and create:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(
                    f"cannot create the database's directory {path.parent} (database.url):"
                    f" {exc.strerror}"
                ) from None
        if path is not None and not create:
            engine = create_engine(url, creator=_existing_sqlite(path, connect_args))
        else:
            engine = create_engine(url, connect_args=connect_args)
        _sqlite_setup(engine, busy_ms)
        return engine
    try:
        engine = create_engine(
            url,
            pool_size=db.pool_size,
            max_overflow=db.max_overflow,
            pool_timeout=db.pool_timeout,
            pool_recycle=db.pool_recycle,
            # A database restart kills pooled connections; test each before use.
            pool_pre_ping=True,
        )
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"database driver missing ({exc.name}); install mailctl[postgres]"
        ) from None
    _close_when_dropped(engine)
    return engine


def _sqlite_file(database: str | None) -> Path | None:
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).expanduser()


def _existing_sqlite(path: Path, connect_args: dict[str, Any]) -> Callable[[], Any]:
    """Connects only to a file that is there: sqlite3 would create a missing one (and a
    read command would leave an empty database behind). mode=rw keeps it so even if the
    file disappears between the check and the open."""
    import sqlite3

    def connect() -> Any:
        if not path.is_file():
            raise NoDatabase(
                f"no database at {path} (database.url); create it with `mailctl init --admin EMAIL`"
            )
        uri = f"{path.resolve().as_uri()}?mode=rw"
        return sqlite3.connect(uri, uri=True, **connect_args)

    return connect


def _close_when_dropped(engine: Engine) -> None:
    # An engine dropped without dispose() (a CLI command, a test's app) would leave its open
    # connections to the garbage collector, which psycopg reports as a ResourceWarning. Keep
    # only the libpq handles (nothing that refers back to the engine) and close them with it.
    handles: list[Any] = []

    @event.listens_for(engine, "connect")
    def _track(dbapi_conn: Any, _record: Any) -> None:
        pgconn = getattr(dbapi_conn, "pgconn", None)
        if pgconn is not None:
            from psycopg import pq

            handles[:] = [h for h in handles if h.status != pq.ConnStatus.BAD]
            handles.append(pgconn)

    weakref.finalize(engine, _finish_all, handles)


def _finish_all(handles: list[Any]) -> None:
    for pgconn in handles:
        pgconn.finish()


def _sqlite_setup(engine: Engine, busy_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        # pysqlite's own transaction handling is replaced by explicit BEGINs below.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {busy_ms}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        # A deferred BEGIN that later writes fails with "database is locked" at once when
        # another writer committed in between, whatever the busy timeout. Writers take the
        # lock up front instead; read-only scopes ask for a plain BEGIN.
        mode = "DEFERRED" if conn.get_execution_options().get("mailctl_readonly") else "IMMEDIATE"
        conn.exec_driver_sql(f"BEGIN {mode}")


def rowcount(result: Result[*tuple[Any, ...]]) -> int:
    """How many rows an INSERT, UPDATE or DELETE touched (Session.execute types its result
    as a plain Result; for these statements it is always a CursorResult)."""
    return cast(CursorResult[*tuple[Any, ...]], result).rowcount


def _dbapi_connection(conn: Connection) -> DBAPIConnection:
    raw = conn.connection.dbapi_connection
    if raw is None:  # only once the pool has let it go
        raise RuntimeError("the connection is closed")
    return raw


def dbapi_cursor(conn: Connection) -> Any:
    """A DBAPI cursor on the connection under `conn`, kept for as long as that connection."""
    raw = _dbapi_connection(conn)
    cursor = conn.info.get("mailctl_cursor")
    if cursor is None or conn.info.get("mailctl_raw") is not raw:
        cursor = raw.cursor()
        conn.info["mailctl_cursor"], conn.info["mailctl_raw"] = cursor, raw
    return cursor


@contextmanager
def raw_write(conn: Connection) -> Iterator[Any]:
    """One short write transaction straight on the DBAPI connection under an idle `conn`.

    For the sender's per-message commit: SQLAlchemy's begin/commit events and bookkeeping cost
    more than the three statements inside. It keeps what `conn.begin()` gives: BEGIN IMMEDIATE
    on SQLite, commit or rollback as a whole, driver errors raised as SQLAlchemy's DBAPIError
    (adapters print those as one line), and a dropped connection invalidated, not reused.
    Statements inside must run on the yielded cursor, not through `conn`.
    """
    if conn.in_transaction():
        raise RuntimeError("raw_write() needs a connection outside any transaction")
    raw = _dbapi_connection(conn)
    dialect = conn.dialect
    if dialect.dbapi is None:  # a dialect made without a driver, never one of an engine
        raise RuntimeError(f"the {dialect.name} dialect has no driver")
    error: type[Exception] = dialect.dbapi.Error
    cursor = dbapi_cursor(conn)
    step = "BEGIN"
    try:
        if dialect.name == "sqlite":
            cursor.execute("BEGIN IMMEDIATE")
        step = "(statements of a write transaction)"
        yield cursor
        step = "COMMIT"
        raw.commit()
    except BaseException as exc:
        with suppress(Exception):  # a dropped connection has nothing left to roll back
            raw.rollback()
        orig = exc.orig if isinstance(exc, DBAPIError) else exc
        if isinstance(orig, error):
            # orig is an instance of the driver's Error class (checked just above).
            dropped = dialect.is_disconnect(cast(Any, orig), raw, cursor)
            if dropped:
                conn.invalidate(orig)
            if isinstance(exc, DBAPIError):
                exc.connection_invalidated = exc.connection_invalidated or dropped
            else:
                raise DBAPIError.instance(
                    step, None, orig, error, connection_invalidated=dropped
                ) from exc
        raise


# Called after a commit with the names of the tables it changed (caches drop stale pages).
# Kept on the engine itself: a module-level registry would keep every engine (and its open
# connections) alive for good, and hand a dead engine's hooks to a new one with the same id().
_HOOKS = "_mailctl_commit_hooks"


def on_commit(engine: Engine, hook: Callable[[set[str]], None]) -> None:
    engine.__dict__.setdefault(_HOOKS, []).append(hook)


@event.listens_for(Session, "after_flush")
def _collect_flushed(session: Session, _ctx: Any) -> None:
    touched = session.info.setdefault("touched", set())
    for obj in (*session.new, *session.dirty, *session.deleted):
        table = getattr(obj, "__tablename__", None)
        if table:
            touched.add(table)


@event.listens_for(Session, "do_orm_execute")
def _collect_bulk(state: Any) -> None:
    if state.is_update or state.is_delete or state.is_insert:
        table = getattr(state.statement, "table", None)
        if table is not None:
            state.session.info.setdefault("touched", set()).add(table.name)


def unnoticed(session: Session, table: str) -> None:
    """Keep this transaction's writes to `table` from the commit hooks (a counter that is never
    part of a cached page must not empty the cache on every hit)."""
    session.info.get("touched", set()).discard(table)


@contextmanager
def session_scope(engine: Engine, *, readonly: bool = False) -> Iterator[Session]:
    """One transaction: committed on success, rolled back on any error."""
    bind = engine.execution_options(mailctl_readonly=True) if readonly else engine
    session = Session(bind, expire_on_commit=False)
    try:
        yield session
        # A read-only scope just closes: rollback() would expire the objects it hands back.
        if not readonly:
            session.commit()
            touched = session.info.pop("touched", set())
            if touched:
                for hook in engine.__dict__.get(_HOOKS, ()):
                    hook(touched)
    except OperationalError as exc:
        session.rollback()
        raise DatabaseError(f"database error: {_first_line(exc)}") from exc
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _first_line(exc: DBAPIError) -> str:
    return str(exc.orig).splitlines()[0] if exc.orig is not None else str(exc).splitlines()[0]
