"""`mailctl web`: serve the panel with uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from mailctl.cli.context import app_context
from mailctl.cli.output import note


def web(
    ctx: typer.Context,
    host: Annotated[
        str | None,
        typer.Option("--host", help="Address to listen on (default: the web.host setting)."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", help="Port to listen on (default: the web.port setting)."),
    ] = None,
) -> None:
    """Serve the web panel (accounts, clients, mailings, blog) with uvicorn.

    Example: mailctl web --host 0.0.0.0 --port 8080
    """
    import uvicorn  # lazy: the rest of the CLI starts without it

    from mailctl.web.app import create_app

    settings = app_context(ctx).settings
    overrides = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    if overrides:
        settings = settings.with_overrides("web", **overrides)
    app = create_app(settings)
    bind_host, bind_port = settings.web.host, settings.web.port
    note(f"mailctl panel on http://{bind_host}:{bind_port}")
    note(f"links in emails point at {settings.base_url()} (set web.base_url to change it)")
    uvicorn.run(
        app,
        host=bind_host,
        port=bind_port,
        log_level=settings.general.log_level.lower(),
    )
