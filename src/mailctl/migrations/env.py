from alembic import context
from sqlmodel import SQLModel

import mailctl.models  # noqa: F401  (registers every table)

config = context.config


def render_item(type_: str, obj: object, autogen_context: object) -> str | bool:
    # Render our column types by their real import path in new revisions.
    if type_ == "type" and type(obj).__name__ == "UTCDateTime":
        return "mailctl.db.UTCDateTime()"
    if type_ == "type" and type(obj).__name__ == "AutoString":
        return f"sqlmodel.sql.sqltypes.AutoString(length={obj.length})"  # type: ignore[attr-defined]
    return False


target_metadata = SQLModel.metadata


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("mailctl runs migrations with a connection; use `mailctl db upgrade`")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
