"""`mailctl smtp test` and `mailctl smtp list`: the mail servers from the shell."""

from __future__ import annotations

from typing import Annotated

import typer

from mailctl.cli.context import app_context
from mailctl.cli.output import JsonOpt, emit_one, emit_rows, note

app = typer.Typer(no_args_is_help=True)


@app.command("test")
def test(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Argument(help="The server's name (default: the first one).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Connect to a mail server, say what it offers and log in if configured.

    Exits 1 with one line saying why when the server cannot be used.

    Example: mailctl smtp test relay-eu
    """
    from mailctl.services.smtp import test_server

    context = app_context(ctx)
    found = test_server(settings=context.settings, name=name)
    note(f"{found.server} ({found.address}): ready to send")
    emit_one(
        {
            "server": found.server,
            "address": found.address,
            "name": found.name,
            "tls": found.tls or ("offered, not used" if found.starttls_offered else "none"),
            "pipelining": "yes" if found.pipelining else "no",
            "size": f"{found.size:,} bytes" if found.size else "not announced",
            "auth": " ".join(found.auth) or "none offered",
            "login": found.login,
        }
        if not as_json
        else found.__dict__,
        as_json=as_json,
        tz=context.tz,
    )


@app.command("list")
def list_(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List every configured mail server: limits, quota used, health.

    Example: mailctl smtp list --json
    """
    from mailctl.errors import MailctlError
    from mailctl.services.smtp import list_servers

    context = app_context(ctx)
    try:
        engine = context.engine
    except MailctlError as exc:  # no database yet: the configuration alone
        note(f"shared state not shown: {exc}")
        engine = None
    rows = [v.as_dict() for v in list_servers(settings=context.settings, engine=engine)]
    emit_rows(
        rows,
        columns=(
            "name",
            "address",
            "security",
            "priority",
            "weight",
            "connections",
            "limits",
            "used",
            "health",
            "health_at",
        ),
        as_json=as_json,
        tz=context.tz,
    )
