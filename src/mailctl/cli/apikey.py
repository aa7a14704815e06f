"""`mailctl apikey ...`: keys for the REST API (/api/v1), of the acting user."""

from __future__ import annotations

from typing import Annotated

import typer

from mailctl.cli.context import app_context
from mailctl.cli.output import JsonOpt, emit_rows, note
from mailctl.services import apikeys as svc

app = typer.Typer(no_args_is_help=True, add_completion=False)

COLUMNS = ("id", "name", "prefix", "scope", "created_at", "last_used_at")


@app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="What the key is for.")] = "",
    scope: Annotated[
        str, typer.Option("--scope", help="read (GET only) or write (everything).")
    ] = "write",
) -> None:
    """Make an API key and print it once (only a keyed hash of it is stored).

    Example: mailctl apikey add --name website --scope write
    """
    app_ctx = app_context(ctx)
    with app_ctx.session() as session:
        made = svc.create_key(
            session=session,
            actor=app_ctx.actor(session),
            secret=app_ctx.settings.web_secret_key(),
            name=name,
            scope=scope,
        )
        key_id, token = made.key.id, made.token
    typer.echo(token)
    note(f"API key {key_id} ({scope}); it is shown only now: store it where it is needed")


@app.command("list")
def list_(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List your API keys: name, scope, when made and last used (never the key itself).

    Example: mailctl apikey list
    """
    app_ctx = app_context(ctx)
    with app_ctx.session(readonly=True) as session:
        rows = [
            {
                "id": k.id,
                "name": k.name,
                "prefix": f"{svc.KEY_PREFIX}{k.prefix}",
                "scope": k.scope,
                "created_at": k.created_at,
                "last_used_at": k.last_used_at,
            }
            for k in svc.list_keys(session=session, actor=app_ctx.actor(session))
        ]
    emit_rows(rows, columns=COLUMNS, as_json=as_json, tz=app_ctx.tz, title="API keys")


@app.command("rm")
def rm(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="The key's id or its prefix (mk_...).")],
) -> None:
    """Revoke an API key: calls with it are refused from now on.

    Example: mailctl apikey rm 1
    """
    app_ctx = app_context(ctx)
    with app_ctx.session() as session:
        key = svc.revoke_key(session=session, actor=app_ctx.actor(session), ref=ref)
        key_id = key.id
    note(f"revoked API key {key_id}")
