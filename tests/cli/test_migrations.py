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
