"""`mailctl bounces ...`: read bounce reports from files or from the bounce mailbox."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from mailctl.cli.context import app_context
from mailctl.cli.output import JsonOpt, emit_one, note

app = typer.Typer(no_args_is_help=True)


@app.command("import")
def import_(
    ctx: typer.Context,
    paths: Annotated[
        list[str], typer.Argument(help="Message files (.eml), mboxes or Maildir directories.")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Record the bounces and complaints in messages, mboxes or Maildirs; print a summary.

    Hard bounces and complaints suppress the address on its owner's list at once, soft
    bounces past [bounces] soft_limit in soft_window_days. Importing twice counts once.

    Example: mailctl bounces import ~/Maildir/.Bounces
    """
    from mailctl.services import bounce_sources, bounces

    app_ctx = app_context(ctx)
    with app_ctx.session(readonly=True) as session:
        bounces.require_operator(app_ctx.actor(session))
    sources = bounce_sources.open_sources(paths)
    tally = bounces.import_messages(
        engine=app_ctx.engine,
        rules=bounces.Rules.from_settings(app_ctx.settings),
        messages=bounce_sources.read_messages(sources),
    )
    emit_one(asdict(tally), as_json=as_json, tz=app_ctx.tz)
    note(tally.line())


@app.command("fetch")
def fetch(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Read the bounce mailbox of [bounces] (IMAP or POP3 over TLS), record what each message
    reports, then move it to bounces.move_to or delete it; print a summary.

    Example: mailctl bounces fetch --json
    """
    from mailctl.services import bounce_mailbox, bounces

    app_ctx = app_context(ctx)
    with app_ctx.session(readonly=True) as session:
        bounces.require_operator(app_ctx.actor(session))
    tally = bounce_mailbox.fetch_bounces(engine=app_ctx.engine, settings=app_ctx.settings)
    emit_one(asdict(tally), as_json=as_json, tz=app_ctx.tz)
    note(tally.line())
