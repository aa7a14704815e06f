"""`mailctl suppression ...`"""

from __future__ import annotations

from typing import Annotated

import typer

from mailctl.cli.context import app_context
from mailctl.cli.output import JsonOpt, emit_rows, note
from mailctl.services import suppressions as svc

app = typer.Typer(no_args_is_help=True)

EmailArg = Annotated[str, typer.Argument(help="The email address.")]
COLUMNS = ("email", "reason", "note", "created_at")


@app.command("list")
def list_(
    ctx: typer.Context,
    removed: Annotated[
        bool, typer.Option("--removed", help="Also entries lifted since, with why.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """List the addresses that are never mailed, with the reason and time.

    Example: mailctl suppression list --json
    """
    app_ctx = app_context(ctx)
    with app_ctx.session(readonly=True) as session:
        rows = svc.list_suppressions(
            session=session, actor=app_ctx.actor(session), include_removed=removed
        )
        found = [
            {
                "email": e.email_key or f"(erased {e.email_hash[:12]})",
                "reason": e.reason,
                "note": e.note,
                "created_at": e.created_at,
                "removed_at": e.removed_at,
                "removed_note": e.removed_note,
                "owner_id": e.owner_id,
            }
            for e in rows
        ]
    columns = COLUMNS + (("removed_at", "removed_note") if removed else ())
    emit_rows(found, columns=columns, as_json=as_json, tz=app_ctx.tz, title="Suppressed")


@app.command("add")
def add(
    ctx: typer.Context,
    email: EmailArg,
    reason: Annotated[
        str, typer.Option("--reason", help="manual, unsubscribed, bounce or complaint.")
    ] = "manual",
    note_: Annotated[str, typer.Option("--note", help="Why, for the record.")] = "",
) -> None:
    """Never mail this address again (even as a client imported later).

    Example: mailctl suppression add ann@example.com --reason complaint --note "phoned us"
    """
    app_ctx = app_context(ctx)
    with app_ctx.session() as session:
        entry = svc.add_suppression(
            session=session,
            actor=app_ctx.actor(session),
            email=email,
            secret=app_ctx.settings.web_secret_key(),
            reason=reason,
            note=note_,
        )
    note(f"suppressed {email} ({entry.reason})")


@app.command("rm")
def rm(
    ctx: typer.Context,
    email: EmailArg,
    reason: Annotated[str, typer.Option("--reason", help="Why it may be mailed again.")],
    force: Annotated[
        bool, typer.Option("--force", help="Lift a complaint too (admins only).")
    ] = False,
) -> None:
    """Allow an address to be mailed again, saying why; complaints need an admin's --force.

    Example: mailctl suppression rm ann@example.com --reason "asked to be back, by letter"
    """
    app_ctx = app_context(ctx)
    with app_ctx.session() as session:
        svc.remove_suppression(
            session=session,
            actor=app_ctx.actor(session),
            email=email,
            secret=app_ctx.settings.web_secret_key(),
            note=reason,
            force=force,
        )
    note(f"lifted the suppression of {email}")
