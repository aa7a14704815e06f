"""`mailctl config ...`"""

from __future__ import annotations

import typer

from mailctl.cli.context import app_context
from mailctl.cli.output import JsonOpt, emit_rows, note

app = typer.Typer(no_args_is_help=True)


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
