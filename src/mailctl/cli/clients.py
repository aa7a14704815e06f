"""`mailctl client ...`"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from mailctl.cli.context import app_context
from mailctl.cli.output import JsonOpt, emit_one, emit_rows, note, records
from mailctl.errors import Invalid
from mailctl.services import clients as svc

app = typer.Typer(no_args_is_help=True, add_completion=False)

FIELDS = ("id", "email", "full_name", "comment", "unsubscribed_at", "owner_id", "created_at")
COLUMNS = ("id", "email", "full_name", "comment", "unsubscribed_at")


@app.command("add")
def add(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The client's email address.")],
    name: Annotated[str, typer.Option("--name", help="Full name.")] = "",
    comment: Annotated[str, typer.Option("--comment", help="A private note.")] = "",
) -> None:
    """Add a client (a recipient).

    Example: mailctl client add ann@example.com --name "Ann Lee" --comment "met at expo"
    """
    app_ctx = app_context(ctx)
    with app_ctx.session() as session:
        client = svc.add_client(
            session=session,
            actor=app_ctx.actor(session),
            email=email,
            full_name=name,
            comment=comment,
        )
    note(f"added client {client.id} <{client.email}>")
    typer.echo(client.id)


@app.command("list")
def list_(
    ctx: typer.Context,
    search: Annotated[
        str | None, typer.Option("--search", "-s", help="Match email, name or comment.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List your clients.

    Example: mailctl client list --search example.com --json
    """
    app_ctx = app_context(ctx)
    with app_ctx.session(readonly=True) as session:
        rows = svc.list_clients(session=session, actor=app_ctx.actor(session), search=search)
    emit_rows(
        records(rows, FIELDS), columns=COLUMNS, as_json=as_json, tz=app_ctx.tz, title="Clients"
    )


@app.command("show")
def show(
    ctx: typer.Context,
    client_id: Annotated[int, typer.Argument(help="Client id.")],
    as_json: JsonOpt = False,
) -> None:
    """Show one client.

    Example: mailctl client show 3
    """
    app_ctx = app_context(ctx)
    with app_ctx.session(readonly=True) as session:
        client = svc.get_client(session=session, actor=app_ctx.actor(session), client_id=client_id)
    emit_one(records([client], FIELDS)[0], as_json=as_json, tz=app_ctx.tz)


@app.command("edit")
def edit(
    ctx: typer.Context,
    client_id: Annotated[int, typer.Argument(help="Client id.")],
    email: Annotated[str | None, typer.Option("--email", help="New email address.")] = None,
    name: Annotated[str | None, typer.Option("--name", help="New full name.")] = None,
    comment: Annotated[str | None, typer.Option("--comment", help="New comment.")] = None,
) -> None:
    """Change a client's email, name or comment.

    Example: mailctl client edit 3 --name "Ann Lee-Smith"
    """
    app_ctx = app_context(ctx)
    with app_ctx.session() as session:
        client = svc.edit_client(
            session=session,
            actor=app_ctx.actor(session),
            client_id=client_id,
            email=email,
            full_name=name,
            comment=comment,
        )
    note(f"updated client {client.id}")


@app.command("rm")
def rm(
    ctx: typer.Context,
    client_id: Annotated[int, typer.Argument(help="Client id.")],
) -> None:
    """Delete a client (its past delivery log stays).

    Example: mailctl client rm 3
    """
    app_ctx = app_context(ctx)
    with app_ctx.session() as session:
        svc.delete_client(session=session, actor=app_ctx.actor(session), client_id=client_id)
    note(f"deleted client {client_id}")


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(help="CSV with header email,full_name,comment ('-' for stdin).")
    ],
    strict: Annotated[
        bool, typer.Option("--strict", help="Import nothing if any row is bad.")
    ] = False,
) -> None:
    """Import clients from a UTF-8 CSV file; bad rows are reported by line number.

    Exit code 1 when any row was rejected (the good rows are imported unless --strict).

    Example: mailctl client import contacts.csv --strict
    """
    app_ctx = app_context(ctx)
    try:
        data = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
    except OSError as exc:
        raise Invalid(f"cannot read {file}: {exc.strerror}") from None
    with app_ctx.session() as session:
        report = svc.import_clients(
            session=session, actor=app_ctx.actor(session), data=data, strict=strict
        )
    for line, reason in report.errors:
        note(f"line {line}: {reason}")
    note(f"imported {len(report.added)} clients, rejected {len(report.errors)} rows")
    if report.errors:
        raise typer.Exit(1)


@app.command("export")
def export(
    ctx: typer.Context,
    file: Annotated[Path | None, typer.Argument(help="Write here instead of stdout.")] = None,
) -> None:
    """Export your clients as CSV (the format `client import` reads).

    Example: mailctl client export contacts.csv
    """
    app_ctx = app_context(ctx)
    with app_ctx.session(readonly=True) as session:
        text = svc.export_clients(session=session, actor=app_ctx.actor(session))
    if file is None:
        typer.echo(text, nl=False)
        return
    try:
        file.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise Invalid(f"cannot write {file}: {exc.strerror}") from None
    note(f"exported {text.count(chr(10)) - 1} clients to {file}")
