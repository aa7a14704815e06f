"""`mailctl tag ...`"""

from __future__ import annotations

from typing import Annotated

import typer

from mailctl.cli.context import app_context
from mailctl.cli.output import JsonOpt, emit_rows, note
from mailctl.services import tags as svc

app = typer.Typer(no_args_is_help=True)

TagArg = Annotated[str, typer.Argument(help="The tag's name.")]


@app.command("list")
def list_(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List your tags with how many clients have each.

    Example: mailctl tag list --json
    """
    app_ctx = app_context(ctx)
    with app_ctx.session(readonly=True) as session:
        rows = svc.list_tags(session=session, actor=app_ctx.actor(session))
        found = [
            {
                "name": r.tag.name,
                "clients": r.clients,
                "public": r.tag.is_public,
                "owner_id": r.tag.owner_id,
            }
            for r in rows
        ]
    emit_rows(found, columns=("name", "clients", "public"), as_json=as_json, tz=app_ctx.tz)


@app.command("rm")
def rm(ctx: typer.Context, name: TagArg) -> None:
    """Delete a tag (its clients stay); refused while a mailing to come is addressed to it.

    Example: mailctl tag rm old-list
    """
    app_ctx = app_context(ctx)
    with app_ctx.session() as session:
        svc.delete_tag(session=session, actor=app_ctx.actor(session), name=name)
    note(f"deleted tag {name}")


@app.command("public")
def public(
    ctx: typer.Context,
    name: TagArg,
    off: Annotated[bool, typer.Option("--off", help="Hide it from the page again.")] = False,
) -> None:
    """Offer a tag on the preference page, so a recipient may leave it alone.

    Example: mailctl tag public news
    """
    app_ctx = app_context(ctx)
    with app_ctx.session() as session:
        svc.set_tag_public(session=session, actor=app_ctx.actor(session), name=name, public=not off)
    note(f"tag {name} is {'private' if off else 'public'}")
