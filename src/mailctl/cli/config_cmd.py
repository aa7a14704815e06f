"""`mailctl config ...`"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from mailctl.cli.context import app_context
from mailctl.cli.output import JsonOpt, emit_rows, note

app = typer.Typer(no_args_is_help=True, add_completion=False)


@app.command("show")
def show(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Print every effective setting, secrets masked, and where each came from.

    Example: MAILCTL_SMTP_PORT=2525 mailctl config show
    """
    settings = app_context(ctx).settings
    rows = [
        {"key": s.key, "value": s.value, "source": s.source, "env": s.env}
        for s in settings.effective()
    ]
    note(f"config file: {settings.config_path or 'none found (defaults and environment only)'}")
    emit_rows(
        rows, columns=("key", "value", "source"), as_json=as_json, tz=settings.scheduler.timezone
    )


@app.command("check")
def check(
    ctx: typer.Context,
    offline: Annotated[
        bool, typer.Option("--offline", help="Do not connect to the mail server.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """List every problem of the effective settings, one line each.

    Exit code 1 when any is serious (mailctl would not work, or mail to real people would go
    out broken); warnings alone exit 0. With transport smtp the mail server is tried: TLS and
    login as configured, no message sent.

    Example: mailctl config check
    """
    from mailctl.services.setup_checks import check_settings

    settings = app_context(ctx).settings
    findings = check_settings(settings, connect=not offline)
    if as_json:
        typer.echo(json.dumps([f.as_dict() for f in findings], indent=2))
    else:
        for finding in findings:
            typer.echo(f"{finding.level}: {finding.text}")
    serious = sum(f.serious for f in findings)
    if not findings:
        note("no problems found")
    else:
        note(f"{len(findings)} problems, {serious} serious")
    if serious:
        raise typer.Exit(1)
