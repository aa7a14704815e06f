"""Top-level commands: `init`, `stats`, `demo`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from mailctl import migrations
from mailctl.cli.context import app_context
from mailctl.cli.output import JsonOpt, emit_one, note
from mailctl.db import session_scope
from mailctl.errors import Conflict, Invalid


def read_password(password_stdin: bool, *, prompt: str = "Password") -> str:
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        if not sys.stdin.isatty():
            raise Invalid("no terminal to ask for a password: use --password-stdin")
        password = typer.prompt(prompt, hide_input=True, confirmation_prompt=True)
    if not password:
        raise Invalid("the password is empty")
    return password


def init(
    ctx: typer.Context,
    admin: Annotated[str | None, typer.Option("--admin", help="Email of the first admin.")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the admin password from stdin.")
    ] = False,
) -> None:
    """Create or upgrade the database and, on a new one, the first admin.

    Example: echo 's3cret-pass' | mailctl init --admin you@example.com --password-stdin
    """
    from mailctl.services import users

    app_ctx = app_context(ctx)
    engine = app_ctx.open_engine(create=True)
    with session_scope(engine, readonly=True) as session:
        has_users = migrations.current_revision(engine) is not None and bool(
            users.count_users(session=session)
        )
    if has_users and admin:
        raise Conflict("mailctl is already initialised (users exist); use `mailctl user add`")
    if not has_users and not admin:
        raise Invalid("a new database needs its first admin: mailctl init --admin EMAIL")
    password = read_password(password_stdin) if admin else ""
    before = migrations.current_revision(engine)
    migrations.upgrade(engine)
    after = migrations.current_revision(engine)
    note(
        f"database {app_ctx.settings.database.url.split('://')[0]} at revision {after}"
        + (" (upgraded)" if before != after else " (up to date)")
    )
    if admin:
        with session_scope(engine) as session:
            user = users.create_first_admin(session=session, email=admin, password=password)
        note(f"created admin {user.email}")


def stats(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Print the home page figures: mailings, active mailings, unique client emails.

    Example: mailctl stats --json
    """
    from mailctl.services.figures import stats as compute

    app_ctx = app_context(ctx)
    with app_ctx.session(readonly=True) as session:
        figures = compute(session=session, actor=app_ctx.actor(session))
    emit_one(
        {
            "total_mailings": figures.total_mailings,
            "active_mailings": figures.active_mailings,
            "unique_clients": figures.unique_clients,
        },
        as_json=as_json,
        tz=app_ctx.tz,
    )


def demo(ctx: typer.Context) -> None:
    """Set up an empty database with demo users, clients, messages, mailings and posts.

    The mailings that are due go out at once through the configured transport (the outbox
    folder by default: nothing leaves the machine).

    Example: mailctl demo
    """
    from mailctl.cli.delivery import send_due
    from mailctl.services.demo import seed_demo

    app_ctx = app_context(ctx)
    migrations.upgrade(app_ctx.open_engine(create=True))
    with app_ctx.session() as session:
        result = seed_demo(session=session, clock=app_ctx.clock)
    send_due(app_ctx)
    note("demo data created; log in with any of these (password: " + result.password + "):")
    for email, role in result.logins:
        note(f"  {role:<8} {email}")
    stats(ctx, as_json=False)
