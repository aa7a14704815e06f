"""`mailctl db ...`"""

from __future__ import annotations

from typing import Annotated

import typer

from mailctl import migrations
from mailctl.cli.context import app_context
from mailctl.cli.output import note

app = typer.Typer(no_args_is_help=True, add_completion=False)


@app.command("upgrade")
def upgrade(
    ctx: typer.Context,
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Upgrade the database schema.

    Example: mailctl db upgrade
    """
    engine = app_context(ctx).open_engine(create=True)
    migrations.upgrade(engine, revision)
    note(f"database at revision {migrations.current_revision(engine)}")


@app.command("downgrade")
def downgrade(
    ctx: typer.Context,
    revision: Annotated[
        str, typer.Argument(help="Target revision, or 'base' to drop everything.")
    ] = "-1",
) -> None:
    """Downgrade the database schema (data in dropped tables is lost).

    Example: mailctl db downgrade base
    """
    engine = app_context(ctx).raw_engine
    migrations.downgrade(engine, revision)
    note(f"database at revision {migrations.current_revision(engine) or 'base (empty)'}")


@app.command("current")
def current(ctx: typer.Context) -> None:
    """Print the database's revision.

    Example: mailctl db current
    """
    rev = migrations.current_revision(app_context(ctx).raw_engine)
    head = migrations.head_revision()
    typer.echo(rev or "base")
    note("up to date" if rev == head else f"head is {head}: run `mailctl db upgrade`")


@app.command("history")
def history(ctx: typer.Context) -> None:
    """List the migrations this mailctl ships, newest first.

    Example: mailctl db history
    """
    for rev, down, doc in migrations.history():
        typer.echo(f"{down or 'base'} -> {rev}  {doc}")
