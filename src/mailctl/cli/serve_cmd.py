"""`mailctl serve`: the panel and the scheduler in one process, for small installs."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Annotated

import typer

from mailctl.cli.context import app_context
from mailctl.cli.output import note


class _Terminated(Exception):
    """SIGTERM (a supervisor's stop, `docker stop`, `kill`)."""


def _terminated(signum: int, frame: FrameType | None) -> None:
    raise _Terminated


def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option("--host", help="Address (default web.host).")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port (default web.port).")] = None,
    demo: Annotated[
        bool,
        typer.Option("--demo", help="Create the database and demo data first if it is empty."),
    ] = False,
) -> None:
    """Run the web panel and the scheduler together (one process, no cron needed).

    With --demo an empty database is set up with demo users, clients, mailings and posts,
    and the logins are printed; an existing database is used as it is.

    Example: mailctl serve --demo
    """
    import uvicorn  # lazy: the rest of the CLI starts without it

    from mailctl import migrations
    from mailctl.cli.daemon_cmd import setup_logging
    from mailctl.scheduling.daemon import Daemon
    from mailctl.services.demo import DEMO_LOGINS, DEMO_PASSWORD, seed_demo
    from mailctl.services.users import count_users
    from mailctl.web.app import create_app

    app_ctx = app_context(ctx)
    settings = app_ctx.settings
    overrides = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    if overrides:
        settings = settings.with_overrides("web", **overrides)
    if demo:
        migrations.upgrade(app_ctx.open_engine(create=True))
        with app_ctx.session() as session:
            fresh = not count_users(session=session)
            if fresh:
                seed_demo(session=session, clock=app_ctx.clock)
        note("demo data created" if fresh else "using the existing database (demo data not added)")
    app = create_app(settings)
    setup_logging(settings.general.log_level)
    daemon = Daemon(app_ctx.engine, settings)
    scheduler = threading.Thread(
        target=daemon.run, kwargs={"install_signals": False}, name="mailctl-scheduler"
    )
    scheduler.start()
    url = f"http://{settings.web.host}:{settings.web.port}"
    note(f"mailctl panel on {url}  (data in {settings.data_dir}; Ctrl-C to stop)")
    if demo:
        note(f"demo logins (password {DEMO_PASSWORD}):")
        for email, role in DEMO_LOGINS:
            note(f"  {role:<8} {email}")
    # uvicorn shuts the panel down on SIGTERM and then raises the signal again with the
    # handler it found: with Python's default one the process died there, before the
    # scheduler was stopped (its claims kept, its heartbeat "running"). Ours ends the panel
    # like Ctrl-C does, and the scheduler stops below.
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        uvicorn.run(
            app,
            host=settings.web.host,
            port=settings.web.port,
            log_level=settings.general.log_level.lower(),
        )
    except _Terminated:
        note("stopping: received SIGTERM")
    finally:
        daemon.request_stop("the panel stopped")
        scheduler.join(timeout=30)
        signal.signal(signal.SIGTERM, previous)
