"""`mailctl message ...`"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mailctl.cli.context import app_context
from mailctl.cli.output import JsonOpt, emit_one, emit_rows, note, records
from mailctl.errors import Invalid
from mailctl.services import messages as svc

app = typer.Typer(no_args_is_help=True, add_completion=False)

FIELDS = ("id", "subject", "body", "owner_id", "created_at", "updated_at")
COLUMNS = ("id", "subject", "owner_id", "updated_at")

MessageId = Annotated[int, typer.Argument(help="Message id.")]


def text_or_file(text: str | None, path: Path | None, *, name: str, required: bool) -> str | None:
    """The value of `--NAME TEXT` or `--NAME-file PATH`: at most one, exactly one if required."""
    if text is not None and path is not None:
        raise typer.BadParameter("give one, not both", param_hint=f"'--{name}' / '--{name}-file'")
    if path is not None:
        try:
            return path.read_text(encoding="utf-8")
        except OSError as exc:
            raise Invalid(f"cannot read {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise Invalid(f"cannot read {path}: it is not UTF-8 text") from None
    if text is None and required:
        raise typer.BadParameter(
            "one of them is required", param_hint=f"'--{name}' / '--{name}-file'"
        )
    return text


@app.command("add")
def add(
    ctx: typer.Context,
    subject: Annotated[str, typer.Option("--subject", help="Subject line (a template).")],
    body: Annotated[str | None, typer.Option("--body", help="Body text (a template).")] = None,
    body_file: Annotated[
        Path | None, typer.Option("--body-file", help="Read the body from this UTF-8 file.")
    ] = None,
) -> None:
    """Write a message; subject and body may use {{ client.full_name }} and {{ client.email }}.

    Example: mailctl message add --subject "Hello {{ client.first_name }}" --body-file news.txt
    """
    app_ctx = app_context(ctx)
    text = text_or_file(body, body_file, name="body", required=True) or ""
    with app_ctx.session() as session:
        message = svc.add_message(
            session=session,
            actor=app_ctx.actor(session),
            subject=subject,
            body=text,
            limits=app_ctx.render_limits,
        )
    note(f"added message {message.id}")
    typer.echo(message.id)


@app.command("list")
def list_(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List your messages.

    Example: mailctl message list --json
    """
    app_ctx = app_context(ctx)
    with app_ctx.session(readonly=True) as session:
        rows = svc.list_messages(session=session, actor=app_ctx.actor(session))
    emit_rows(
        records(rows, FIELDS), columns=COLUMNS, as_json=as_json, tz=app_ctx.tz, title="Messages"
    )


@app.command("show")
def show(ctx: typer.Context, message_id: MessageId, as_json: JsonOpt = False) -> None:
    """Show one message with its body.

    Example: mailctl message show 2
    """
    app_ctx = app_context(ctx)
    with app_ctx.session(readonly=True) as session:
        message = svc.get_message(
            session=session, actor=app_ctx.actor(session), message_id=message_id
        )
    emit_one(records([message], FIELDS)[0], as_json=as_json, tz=app_ctx.tz)


@app.command("edit")
def edit(
    ctx: typer.Context,
    message_id: MessageId,
    subject: Annotated[str | None, typer.Option("--subject", help="New subject.")] = None,
    body: Annotated[str | None, typer.Option("--body", help="New body text.")] = None,
    body_file: Annotated[
        Path | None, typer.Option("--body-file", help="Read the new body from this UTF-8 file.")
    ] = None,
) -> None:
    """Change a message's subject or body.

    Example: mailctl message edit 2 --subject "Our June news"
    """
    app_ctx = app_context(ctx)
    text = text_or_file(body, body_file, name="body", required=False)
    with app_ctx.session() as session:
        svc.edit_message(
            session=session,
            actor=app_ctx.actor(session),
            message_id=message_id,
            subject=subject,
            body=text,
            limits=app_ctx.render_limits,
        )
    note(f"updated message {message_id}")


@app.command("rm")
def rm(ctx: typer.Context, message_id: MessageId) -> None:
    """Delete a message that no mailing uses.

    Example: mailctl message rm 2
    """
    app_ctx = app_context(ctx)
    with app_ctx.session() as session:
        svc.delete_message(session=session, actor=app_ctx.actor(session), message_id=message_id)
    note(f"deleted message {message_id}")


@app.command("preview")
def preview(
    ctx: typer.Context,
    message_id: MessageId,
    client: Annotated[int, typer.Option("--client", help="Render for this client id.")],
) -> None:
    """Print a message as one client would get it: the subject line, then the body.

    Example: mailctl message preview 2 --client 5
    """
    app_ctx = app_context(ctx)
    settings = app_ctx.settings
    with app_ctx.session(readonly=True) as session:
        rendered = svc.preview_message(
            session=session,
            actor=app_ctx.actor(session),
            message_id=message_id,
            client_id=client,
            from_address=settings.delivery.from_address,
            from_name=settings.delivery.from_name,
            limits=app_ctx.render_limits,
        )
    typer.echo(f"Subject: {rendered.subject}")
    typer.echo("")
    typer.echo(rendered.body, nl=not rendered.body.endswith("\n"))
