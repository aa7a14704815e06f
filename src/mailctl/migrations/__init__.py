"""Run the packaged Alembic migrations against an engine (no alembic.ini needed)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from mailctl.errors import DatabaseError

HERE = Path(__file__).parent


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except OperationalError as exc:
        raise DatabaseError(f"cannot open the database: {str(exc.orig).splitlines()[0]}") from None


def _run(engine: Engine, fn: str, revision: str) -> None:
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        getattr(command, fn)(cfg, revision)


def upgrade(engine: Engine, revision: str = "head") -> None:
    _run(engine, "upgrade", revision)


def downgrade(engine: Engine, revision: str = "-1") -> None:
    _run(engine, "downgrade", revision)


def history() -> list[tuple[str, str | None, str]]:
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
    if current != head_revision():
        raise DatabaseError(
            f"the database is at revision {current}, this mailctl needs {head_revision()}: "
            "run `mailctl db upgrade`"
        )
