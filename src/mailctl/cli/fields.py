"""`mailctl field ...`"""

from __future__ import annotations

from typing import Annotated

import typer

from mailctl.cli.context import app_context
from mailctl.cli.output import JsonOpt, emit_rows, note
from mailctl.services import fields as svc

app = typer.Typer(no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="A lower-case name, e.g. city.")]


@app.command("list")
def list_(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List the custom fields your clients may have.

    Example: mailctl field list
    """
    app_ctx = app_context(ctx)
    with app_ctx.session(readonly=True) as session:
        found = [
            {
                "name": f.name,
                "placeholder": f"{{{{ client.attrs.{f.name} }}}}",
                "owner_id": f.owner_id,
            }
            for f in svc.list_fields(session=session, actor=app_ctx.actor(session))
        ]
    emit_rows(found, columns=("name", "placeholder"), as_json=as_json, tz=app_ctx.tz)


@app.command("add")
def add(ctx: typer.Context, name: NameArg) -> None:
    """Add a custom field (a CSV import adds its extra columns by itself).

    Example: mailctl field add city
    """
    app_ctx = app_context(ctx)
    with app_ctx.session() as session:
        found = svc.add_field(session=session, actor=app_ctx.actor(session), name=name)
    note(f"added field {found.name}: use {{{{ client.attrs.{found.name} }}}} in messages")


@app.command("rm")
def rm(ctx: typer.Context, name: NameArg) -> None:
    """Delete a custom field and its value on every client.

    Example: mailctl field rm city
    """
    app_ctx = app_context(ctx)
    with app_ctx.session() as session:
        cleared = svc.delete_field(session=session, actor=app_ctx.actor(session), name=name)
    note(f"deleted field {name} ({cleared} clients had a value)")
