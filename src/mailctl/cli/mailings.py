"""`mailctl mailing ...` (creating, listing and changing; sending lives in cli/delivery.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer
from sqlmodel import Session

from mailctl.cli import delivery
from mailctl.cli.context import AppContext, app_context
from mailctl.cli.delivery import after_create
from mailctl.cli.output import JsonOpt, emit_one, emit_rows, note
from mailctl.models import Mailing
from mailctl.services import mailings as svc
from mailctl.services.audiences import mailing_tag_names
from mailctl.services.mailing_rows import client_counts
from mailctl.services.status import quota_note
from mailctl.timeutil import parse_when, to_local

app = typer.Typer(no_args_is_help=True, add_completion=False)

COLUMNS = ("id", "status", "every", "next_run_at", "message_id", "clients", "start_at", "end_at")

MailingId = Annotated[int, typer.Argument(help="Mailing id.")]
MessageOpt = Annotated[int | None, typer.Option("--message", help="Message id.")]
ClientsOpt = Annotated[
    list[int] | None, typer.Option("--client", help="Client id; repeat for several.")
]
AllClientsOpt = Annotated[
    bool, typer.Option("--all-clients", help="Every client you have at each run.")
]
TagsOpt = Annotated[
    list[str] | None,
    typer.Option("--tag", help="Clients with this tag at each run; repeat for any of several."),
]
EndOpt = Annotated[
    str | None, typer.Option("--end", help="No run starts at or after this time (default: none).")
]
EveryHelp = "once, day, week or month."


def _local(value: datetime | None, tz: str) -> datetime | None:
    return to_local(value, tz) if value is not None else None


def _record(mailing: Mailing, tz: str, clients: int) -> dict[str, Any]:
    return {
        "id": mailing.id,
        "status": svc.display_status(mailing),
        "every": mailing.every,
        "audience": mailing.audience,
        "next_run_at": _local(mailing.next_run_at, tz),
        "message_id": mailing.message_id,
        "clients": clients,
        "start_at": _local(mailing.start_at, tz),
        "end_at": _local(mailing.end_at, tz),
        "is_enabled": mailing.is_enabled,
        "owner_id": mailing.owner_id,
    }


def _detail(session: Session, mailing: Mailing, tz: str) -> dict[str, Any]:
    client_ids = svc.mailing_client_ids(session=session, mailing=mailing)
    return _record(mailing, tz, len(client_ids)) | {
        "tags": mailing_tag_names(session, mailing.id or 0),
        "client_ids": client_ids,
        "last_run_at": _local(mailing.last_run_at, tz),
        "waiting": quota_note(mailing.quota_server, mailing.quota_until, tz),
        "last_error": mailing.last_error,
        "created_at": _local(mailing.created_at, tz),
        "updated_at": _local(mailing.updated_at, tz),
    }


def _when(app_ctx: AppContext, text: str | None) -> datetime | None:
    return parse_when(text, app_ctx.tz) if text is not None else None


HINT = "'--client' / '--tag' / '--all-clients'"


def _clients_choice(client: list[int] | None, all_clients: bool, tag: list[str] | None) -> None:
    if sum([bool(client), all_clients, bool(tag)]) > 1:
        raise typer.BadParameter("give one of them, not several", param_hint=HINT)


@app.command("add")
def add(
    ctx: typer.Context,
    message: Annotated[int, typer.Option("--message", help="Message id.")],
    start: Annotated[
        str, typer.Option("--start", help="First run: 'now', '+2h', ISO or 'YYYY-MM-DD HH:MM'.")
    ],
    client: ClientsOpt = None,
    tag: TagsOpt = None,
    all_clients: AllClientsOpt = False,
    end: EndOpt = None,
    every: Annotated[str, typer.Option("--every", help=EveryHelp)] = "once",
    no_send: Annotated[
        bool, typer.Option("--no-send", help="Only store it, even when it is due now.")
    ] = False,
) -> None:
    """Create a mailing; when it is due now it is sent at once, later ones go out by themselves.

    A one-off unless --every says day, week or month. A start that has passed is due at once
    (as `now` is) while the end is still ahead. The audience of --tag and --all-clients is
    worked out when each run starts, so clients added or tagged since the last run get the
    next one.

    Example: mailctl mailing add --message 2 --tag news --start "2030-06-01 09:00" --every week
    """
    app_ctx = app_context(ctx)
    _clients_choice(client, all_clients, tag)
    if not client and not all_clients and not tag:
        raise typer.BadParameter("one of them is required", param_hint=HINT)
    start_at, end_at = parse_when(start, app_ctx.tz), _when(app_ctx, end)
    with app_ctx.session() as session:
        mailing = svc.add_mailing(
            session=session,
            actor=app_ctx.actor(session),
            message_id=message,
            start=start_at,
            end=end_at,
            every=every,
            client_ids=client,
            all_clients=all_clients,
            tags=tag,
            clock=app_ctx.clock,
        )
    note(f"added mailing {mailing.id}")
    typer.echo(mailing.id)
    after_create(ctx, mailing, no_send=no_send)


@app.command("list")
def list_(
    ctx: typer.Context,
    status: Annotated[
        str | None,
        typer.Option("--status", help="created, started, finished or disabled."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List mailings: yours, or all of them for a manager or an admin.

    Example: mailctl mailing list --status started --json
    """
    app_ctx = app_context(ctx)
    with app_ctx.session(readonly=True) as session:
        mailings = svc.list_mailings(session=session, actor=app_ctx.actor(session), status=status)
        # One grouped count for the whole list, not every mailing's client ids.
        counts = client_counts(session=session, mailing_ids=[m.id or 0 for m in mailings])
        rows = [_record(m, app_ctx.tz, counts.get(m.id or 0, 0)) for m in mailings]
    emit_rows(rows, columns=COLUMNS, as_json=as_json, tz=app_ctx.tz, title="Mailings")


@app.command("show")
def show(ctx: typer.Context, mailing_id: MailingId, as_json: JsonOpt = False) -> None:
    """Show one mailing with its clients and schedule (times in the configured zone).

    Example: mailctl mailing show 4 --json
    """
    app_ctx = app_context(ctx)
    with app_ctx.session(readonly=True) as session:
        mailing = svc.get_mailing(
            session=session, actor=app_ctx.actor(session), mailing_id=mailing_id
        )
        record = _detail(session, mailing, app_ctx.tz)
    if not as_json:
        record["client_ids"] = " ".join(str(i) for i in record["client_ids"])
    emit_one(record, as_json=as_json, tz=app_ctx.tz)


@app.command("edit")
def edit(
    ctx: typer.Context,
    mailing_id: MailingId,
    message: MessageOpt = None,
    client: ClientsOpt = None,
    tag: TagsOpt = None,
    all_clients: AllClientsOpt = False,
    start: Annotated[str | None, typer.Option("--start", help="New first run time.")] = None,
    end: EndOpt = None,
    no_end: Annotated[bool, typer.Option("--no-end", help="Remove the end time.")] = False,
    every: Annotated[str | None, typer.Option("--every", help=EveryHelp)] = None,
) -> None:
    """Change a mailing's message, clients or schedule (owner or admin).

    Example: mailctl mailing edit 4 --every month --end "2031-01-01 00:00"
    """
    app_ctx = app_context(ctx)
    _clients_choice(client, all_clients, tag)
    if end is not None and no_end:
        raise typer.BadParameter("give one, not both", param_hint="'--end' / '--no-end'")
    start_at, end_at = _when(app_ctx, start), _when(app_ctx, end)
    with app_ctx.session() as session:
        svc.edit_mailing(
            session=session,
            actor=app_ctx.actor(session),
            mailing_id=mailing_id,
            message_id=message,
            start=start_at,
            end=end_at,
            clear_end=no_end,
            every=every,
            client_ids=client or None,
            all_clients=all_clients,
            tags=tag or None,
            clock=app_ctx.clock,
        )
    note(f"updated mailing {mailing_id}")


@app.command("rm")
def rm(ctx: typer.Context, mailing_id: MailingId) -> None:
    """Delete a mailing with its delivery log.

    Example: mailctl mailing rm 4
    """
    app_ctx = app_context(ctx)
    with app_ctx.session() as session:
        svc.delete_mailing(session=session, actor=app_ctx.actor(session), mailing_id=mailing_id)
    note(f"deleted mailing {mailing_id}")


def _set_enabled(ctx: typer.Context, mailing_id: int, *, enabled: bool) -> None:
    app_ctx = app_context(ctx)
    with app_ctx.session() as session:
        svc.set_enabled(
            session=session, actor=app_ctx.actor(session), mailing_id=mailing_id, enabled=enabled
        )
    note(f"{'enabled' if enabled else 'disabled'} mailing {mailing_id}")


@app.command("disable")
def disable(ctx: typer.Context, mailing_id: MailingId) -> None:
    """Pause a mailing: nothing is sent until it is enabled again (owner, manager or admin).

    Example: mailctl mailing disable 4
    """
    _set_enabled(ctx, mailing_id, enabled=False)


@app.command("enable")
def enable(ctx: typer.Context, mailing_id: MailingId) -> None:
    """Resume a disabled mailing.

    Example: mailctl mailing enable 4
    """
    _set_enabled(ctx, mailing_id, enabled=True)


delivery.register(app)
