"""Run the packaged Alembic migrations against an engine (no alembic.ini needed).

Alembic (and Mako behind it) costs a CLI command more than the command itself, so it is
imported only by what changes or lists the schema. Checking that a database is current,
which every command does, reads one row and compares it with HEAD.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.exc import OperationalError, ProgrammingError

from mailctl.errors import DatabaseError

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Engine

HERE = Path(__file__).parent

# The newest revision in versions/. A new revision updates this line in the same commit;
# tests/cli/test_migrations.py fails until it does.
HEAD = "0018"


def alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    return cfg


def head_revision() -> str | None:
    """The head as Alembic finds it in versions/ (what HEAD must equal)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The database's revision, or None for a database without mailctl's schema."""
    try:
        with engine.connect() as conn:
            if not engine.dialect.has_table(conn, "alembic_version"):
                return None
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except (OperationalError, ProgrammingError) as exc:
        raise DatabaseError(f"cannot open the database: {str(exc.orig).splitlines()[0]}") from None
    if len(rows) > 1:
        raise DatabaseError(f"the database has several schema heads: {', '.join(sorted(rows))}")
    return rows[0] if rows else None


def _run(engine: Engine, fn: str, revision: str) -> None:
    from alembic import command

    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        getattr(command, fn)(cfg, revision)


def upgrade(engine: Engine, revision: str = "head") -> None:
    _run(engine, "upgrade", revision)


def downgrade(engine: Engine, revision: str = "-1") -> None:
    _run(engine, "downgrade", revision)


def history() -> list[tuple[str, str | None, str]]:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    return [
        (rev.revision, rev.down_revision if isinstance(rev.down_revision, str) else None, rev.doc)
        for rev in script.walk_revisions()
    ]


def require_current(engine: Engine) -> None:
    """Refuse to work on a database that `mailctl init` has not brought up to date."""
    current = current_revision(engine)
    if current is None:
        raise DatabaseError("the database is not initialised: run `mailctl init` first")
    if current != HEAD:
        raise DatabaseError(
            f"the database is at revision {current}, this mailctl needs {HEAD}: "
            "run `mailctl db upgrade`"
        )
