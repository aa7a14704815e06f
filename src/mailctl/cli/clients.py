"""`mailctl client ...`"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlmodel import Session

from mailctl.cli.context import app_context
from mailctl.cli.output import JsonOpt, emit_one, emit_rows, note, records, write_file, write_out
from mailctl.models import Client
from mailctl.services import clients as svc
from mailctl.services import tags as tag_svc
from mailctl.services.fields import parse_assignments
from mailctl.services.tagging import tags_of

app = typer.Typer(no_args_is_help=True, add_completion=False)

FIELDS = (
    "id",
    "email",
    "full_name",
    "comment",
    "attrs",
    "unsubscribed_at",
    "owner_id",
    "created_at",
)
COLUMNS = ("id", "email", "full_name", "tags", "comment", "unsubscribed_at")
TagsOpt = Annotated[list[str] | None, typer.Option("--tag", help="A tag; repeat for several.")]
TagArgs = Annotated[list[str], typer.Argument(help="One or more tags.", metavar="TAG")]


@app.command("add")
def add(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The client's email address.")],
    name: Annotated[str, typer.Option("--name", help="Full name.")] = "",
    comment: Annotated[str, typer.Option("--comment", help="A private note.")] = "",
    tag: TagsOpt = None,
) -> None:
    """Add a client (a recipient).

    Example: mailctl client add ann@example.com --name "Ann Lee" --tag news --tag vip
    """
    app_ctx = app_context(ctx)
    with app_ctx.session() as session:
        client = svc.add_client(
            session=session,
            actor=app_ctx.actor(session),
            email=email,
            full_name=name,
            comment=comment,
            tags=tag or (),
        )
    note(f"added client {client.id} <{client.email}>")
    typer.echo(client.id)


@app.command("list")
def list_(
    ctx: typer.Context,
    search: Annotated[
        str | None, typer.Option("--search", "-s", help="Match email, name or comment.")
    ] = None,
    tag: Annotated[str | None, typer.Option("--tag", help="Only clients with this tag.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List your clients.

    Example: mailctl client list --tag news --json
    """
    app_ctx = app_context(ctx)
    with app_ctx.session(readonly=True) as session:
        rows = svc.list_clients(
            session=session, actor=app_ctx.actor(session), search=search, tag=tag
        )
        found = _with_tags(session, rows)
    emit_rows(found, columns=COLUMNS, as_json=as_json, tz=app_ctx.tz, title="Clients")


def _with_tags(session: Session, rows: Sequence[Client]) -> list[dict[str, Any]]:
    labels = tags_of(session, [c.id or 0 for c in rows])
    return [
        r | {"tags": " ".join(labels[c.id or 0])}
        for r, c in zip(records(rows, FIELDS), rows, strict=True)
    ]


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
        actor = app_ctx.actor(session)
        client = svc.get_client(session=session, actor=actor, client_id=client_id)
        (record,) = _with_tags(session, [client])
        from mailctl.services.signups import list_consents

        consents = list_consents(session=session, actor=actor, client_id=client_id)
    # Each double opt-in: when it was asked and confirmed, through which form, from where.
    record["consents"] = [
        {
            "form_id": c.form_id,
            "ip": c.ip,
            "requested_at": c.requested_at,
            "confirmed_at": c.confirmed_at,
        }
        for c in consents
    ]
    if not as_json:
        record["consents"] = "; ".join(
            f"confirmed {c['confirmed_at']:%Y-%m-%d %H:%M} UTC"
            f" through form {c['form_id'] or '(deleted)'} from {c['ip'] or '?'}"
            for c in record["consents"]
        )
    emit_one(record, as_json=as_json, tz=app_ctx.tz)


@app.command("edit")
def edit(
    ctx: typer.Context,
    client_id: Annotated[int, typer.Argument(help="Client id.")],
    email: Annotated[str | None, typer.Option("--email", help="New email address.")] = None,
    name: Annotated[str | None, typer.Option("--name", help="New full name.")] = None,
    comment: Annotated[str | None, typer.Option("--comment", help="New comment.")] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="A custom field, NAME=VALUE (empty clears); repeatable."),
    ] = None,
) -> None:
    """Change a client's email, name, comment or custom fields.

    Example: mailctl client edit 3 --name "Ann Lee-Smith" --set city=Riga
    """
    app_ctx = app_context(ctx)
    attrs = parse_assignments(set_ or [])
    with app_ctx.session() as session:
        client = svc.edit_client(
            session=session,
            actor=app_ctx.actor(session),
            client_id=client_id,
            email=email,
            full_name=name,
            comment=comment,
            attrs=attrs,
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


@app.command("erase")
def erase(
    ctx: typer.Context,
    client_id: Annotated[int, typer.Argument(help="Client id.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask to confirm.")] = False,
) -> None:
    """Erase a person (GDPR art. 17): the client and its address everywhere, logs included.

    Counts and reports stay right (the logs keep a keyed hash); an address on the
    suppression list stays blocked by its hash.

    Example: mailctl client erase 3 --yes
    """
    app_ctx = app_context(ctx)
    if not yes and not typer.confirm(f"Erase client {client_id} everywhere? This cannot be undone"):
        raise typer.Exit(1)
    from mailctl.services.erasure import erase_client

    with app_ctx.session() as session:
        done = erase_client(
            session=session,
            actor=app_ctx.actor(session),
            client_id=client_id,
            secret=app_ctx.settings.web_secret_key(),
            outbox_dir=Path(app_ctx.settings.delivery.outbox_dir),
        )
    files = f"; {done.outbox_files} outbox files deleted" if done.outbox_files else ""
    note(
        f"erased client {client_id}: {done.deliveries} ledger rows and {done.attempts} log "
        f"rows now carry a keyed hash{files}"
    )


@app.command("tag")
def tag(
    ctx: typer.Context,
    client_id: Annotated[int, typer.Argument(help="Client id.")],
    tags: TagArgs,
) -> None:
    """Give a client tags (new tags are created).

    Example: mailctl client tag 3 news vip
    """
    app_ctx = app_context(ctx)
    with app_ctx.session() as session:
        have = tag_svc.tag_client(
            session=session, actor=app_ctx.actor(session), client_id=client_id, names=tags
        )
    note(f"client {client_id} tags: {' '.join(have) or '(none)'}")


@app.command("untag")
def untag(
    ctx: typer.Context,
    client_id: Annotated[int, typer.Argument(help="Client id.")],
    tags: TagArgs,
) -> None:
    """Take tags off a client.

    Example: mailctl client untag 3 vip
    """
    app_ctx = app_context(ctx)
    with app_ctx.session() as session:
        have = tag_svc.untag_client(
            session=session, actor=app_ctx.actor(session), client_id=client_id, names=tags
        )
    note(f"client {client_id} tags: {' '.join(have) or '(none)'}")


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(help="CSV with header email,full_name,comment,tags ('-' for stdin)."),
    ],
    strict: Annotated[
        bool, typer.Option("--strict", help="Import nothing if any row is bad.")
    ] = False,
) -> None:
    """Import clients from a UTF-8 CSV file; bad rows are reported by line number.

    Exit code 1 when any row was rejected (the good rows are imported unless --strict).

    Example: mailctl client import contacts.csv --strict
    """
    from mailctl.cli.importing import import_file

    app_ctx = app_context(ctx)
    report = import_file(app_ctx, file, strict=strict)
    note(f"imported {report.added} clients, rejected {report.rejected} rows")
    if report.rejected:
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
        pieces = svc.export_csv(session=session, actor=app_ctx.actor(session))
        if file is None:
            write_out(pieces)
            return
        write_file(file, pieces)
    note(f"exported {pieces.rows} clients to {file}")
