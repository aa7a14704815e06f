"""`mailctl user ...`"""

from __future__ import annotations

from typing import Annotated

import typer

from mailctl.cli.context import app_context
from mailctl.cli.output import JsonOpt, emit_one, emit_rows, note, records
from mailctl.cli.setup import read_password
from mailctl.services import users as svc

app = typer.Typer(no_args_is_help=True, add_completion=False)

# Never the password hash or the session version, in a table or in JSON.
FIELDS = (
    "id",
    "email",
    "full_name",
    "role",
    "is_active",
    "is_verified",
    "date_joined",
    "last_login",
)
COLUMNS = ("id", "email", "full_name", "role", "is_active", "is_verified", "last_login")

Ref = Annotated[str, typer.Argument(help="User id or email.")]
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")
]


@app.command("add")
def add(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="Login email of the new user.")],
    name: Annotated[str, typer.Option("--name", help="Full name.")] = "",
    role: Annotated[str, typer.Option("--role", help="user, manager, editor or admin.")] = "user",
    password_stdin: PasswordStdin = False,
    unverified: Annotated[
        bool, typer.Option("--unverified", help="Require email verification before login.")
    ] = False,
) -> None:
    """Create an account (admins only); the password is asked for twice.

    Example: echo 'long-secret-1' | mailctl user add bob@example.com --role manager --password-stdin
    """
    app_ctx = app_context(ctx)
    password = read_password(password_stdin)
    with app_ctx.session() as session:
        user = svc.add_user(
            session=session,
            actor=app_ctx.actor(session),
            email=email,
            password=password,
            role=role,
            full_name=name,
            verified=not unverified,
        )
    note(f"added {user.role} {user.id} <{user.email}>")
    typer.echo(user.id)


@app.command("list")
def list_(
    ctx: typer.Context,
    search: Annotated[
        str | None, typer.Option("--search", "-s", help="Match email or name.")
    ] = None,
    role: Annotated[str | None, typer.Option("--role", help="Only users with this role.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List accounts (managers and admins).

    Example: mailctl user list --role manager --json
    """
    app_ctx = app_context(ctx)
    with app_ctx.session(readonly=True) as session:
        rows = svc.list_users(
            session=session, actor=app_ctx.actor(session), search=search, role=role
        )
    emit_rows(records(rows, FIELDS), columns=COLUMNS, as_json=as_json, tz=app_ctx.tz, title="Users")


@app.command("show")
def show(ctx: typer.Context, ref: Ref, as_json: JsonOpt = False) -> None:
    """Show one account.

    Example: mailctl user show bob@example.com --json
    """
    app_ctx = app_context(ctx)
    with app_ctx.session(readonly=True) as session:
        user = svc.find_user(session=session, actor=app_ctx.actor(session), ref=ref)
    emit_one(records([user], FIELDS)[0], as_json=as_json, tz=app_ctx.tz)


@app.command("edit")
def edit(
    ctx: typer.Context,
    ref: Ref,
    name: Annotated[str | None, typer.Option("--name", help="New full name.")] = None,
    email: Annotated[str | None, typer.Option("--email", help="New login email.")] = None,
) -> None:
    """Change an account's name or login email (your own, or anyone's as an admin).

    Example: mailctl user edit bob@example.com --name "Bob Stone"
    """
    app_ctx = app_context(ctx)
    with app_ctx.session() as session:
        actor = app_ctx.actor(session)
        user = svc.find_user(session=session, actor=actor, ref=ref)
        svc.edit_user(
            session=session, actor=actor, user_id=user.id or 0, full_name=name, email=email
        )
    note(f"updated user {user.id}")


def _set_blocked(ctx: typer.Context, ref: str, *, blocked: bool) -> None:
    app_ctx = app_context(ctx)
    with app_ctx.session() as session:
        actor = app_ctx.actor(session)
        user = svc.find_user(session=session, actor=actor, ref=ref)
        svc.set_blocked(session=session, actor=actor, user_id=user.id or 0, blocked=blocked)
    note(f"{'blocked' if blocked else 'unblocked'} user {user.id} <{user.email}>")


@app.command("block")
def block(ctx: typer.Context, ref: Ref) -> None:
    """Block an account: it cannot log in and its open sessions stop working.

    Example: mailctl user block bob@example.com
    """
    _set_blocked(ctx, ref, blocked=True)


@app.command("unblock")
def unblock(ctx: typer.Context, ref: Ref) -> None:
    """Unblock an account.

    Example: mailctl user unblock bob@example.com
    """
    _set_blocked(ctx, ref, blocked=False)


@app.command("verify")
def verify(ctx: typer.Context, ref: Ref) -> None:
    """Mark an account's email as verified by hand (admins only).

    Example: mailctl user verify bob@example.com
    """
    app_ctx = app_context(ctx)
    with app_ctx.session() as session:
        actor = app_ctx.actor(session)
        user = svc.find_user(session=session, actor=actor, ref=ref)
        svc.verify_user(session=session, actor=actor, user_id=user.id or 0)
    note(f"verified user {user.id} <{user.email}>")


@app.command("set-role")
def set_role(
    ctx: typer.Context,
    ref: Ref,
    role: Annotated[str, typer.Argument(help="user, manager, editor or admin.")],
) -> None:
    """Change an account's role (admins only).

    Example: mailctl user set-role bob@example.com editor
    """
    app_ctx = app_context(ctx)
    with app_ctx.session() as session:
        actor = app_ctx.actor(session)
        user = svc.find_user(session=session, actor=actor, ref=ref)
        user = svc.set_role(session=session, actor=actor, user_id=user.id or 0, role=role)
    note(f"user {user.id} <{user.email}> is now {user.role}")


@app.command("passwd")
def passwd(
    ctx: typer.Context,
    ref: Annotated[str | None, typer.Argument(help="User id or email (default: yourself).")] = None,
    password_stdin: PasswordStdin = False,
) -> None:
    """Set a password: your own, or anyone's as an admin.

    Example: echo 'new-long-secret' | mailctl --as bob@example.com user passwd --password-stdin
    """
    app_ctx = app_context(ctx)
    password = read_password(password_stdin, prompt="New password")
    with app_ctx.session() as session:
        actor = app_ctx.actor(session)
        user = svc.find_user(session=session, actor=actor, ref=ref) if ref else actor
        svc.set_password(session=session, actor=actor, user_id=user.id or 0, new_password=password)
    note(f"password changed for {user.email}; its open sessions were ended")


@app.command("rm")
def rm(ctx: typer.Context, ref: Ref) -> None:
    """Delete an account with its clients, messages and mailings (admins only).

    Example: mailctl user rm bob@example.com
    """
    app_ctx = app_context(ctx)
    with app_ctx.session() as session:
        actor = app_ctx.actor(session)
        user = svc.find_user(session=session, actor=actor, ref=ref)
        svc.delete_user(session=session, actor=actor, user_id=user.id or 0)
    note(f"deleted user {user.id} <{user.email}>")
