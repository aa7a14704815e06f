"""The shipped migrations build exactly the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

import mailctl.models  # noqa: F401  (registers every table)
from mailctl import migrations
from mailctl.db import make_engine


def _diff(engine):  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, SQLModel.metadata)


def test_upgrade_downgrade_upgrade_matches_models(settings) -> None:
    engine = make_engine(settings, create=True)
    try:
        assert migrations.current_revision(engine) is None
        migrations.upgrade(engine)
        assert migrations.current_revision(engine) == migrations.head_revision()
        assert _diff(engine) == []

        migrations.downgrade(engine, "base")
        assert migrations.current_revision(engine) is None
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}

        migrations.upgrade(engine)
        assert set(SQLModel.metadata.tables) <= set(inspect(engine).get_table_names())
        assert _diff(engine) == []
    finally:
        engine.dispose()


def test_head_constant_is_the_newest_revision() -> None:
    # Every command checks the schema against HEAD without loading Alembic; a new revision
    # must move it too.
    assert migrations.head_revision() == migrations.HEAD, (
        f"mailctl.migrations.HEAD is {migrations.HEAD!r} but versions/ ends at "
        f"{migrations.head_revision()!r}: update HEAD"
    )


def test_an_old_schema_is_refused_without_alembic(cli, engine) -> None:
    from sqlalchemy import text

    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'old0'"))
    result = cli("client", "list")
    assert result.exit_code == 1
    assert "at revision old0, this mailctl needs" in result.stderr
    assert "mailctl db upgrade" in result.stderr
