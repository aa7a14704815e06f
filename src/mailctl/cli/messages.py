"""`mailctl message ...`"""

from __future__ import annotations

from pathlib import Path
from types import EllipsisType
from typing import Annotated

import typer

from mailctl.cli.context import app_context
from mailctl.cli.output import JsonOpt, emit_one, emit_rows, note, records
from mailctl.errors import Invalid
from mailctl.services import messages as svc

app = typer.Typer(no_args_is_help=True, add_completion=False)

FIELDS = ("id", "subject", "format", "layout_id", "body", "owner_id", "created_at", "updated_at")
COLUMNS = ("id", "subject", "format", "owner_id", "updated_at")

MessageId = Annotated[int, typer.Argument(help="Message id.")]
FormatOpt = Annotated[
    str | None,
    typer.Option(
        "--format", help="Body format: markdown (the default), html or text.", metavar="FORMAT"
    ),
]
LayoutOpt = Annotated[
    str | None,
    typer.Option(
        "--layout",
        help="Layout id for a Markdown or HTML message, or 'default' (see `mailctl layout`).",
    ),
]


def layout_choice(value: str | None) -> int | None | EllipsisType:
    """`--layout ID|default` as the service takes it: ... to keep, None for the default."""
    if value is None:
        return ...
    if value.strip().lower() == "default":
        return None
    if not value.strip().isdigit():
        raise typer.BadParameter(
            f"{value!r} is not a layout id or 'default'", param_hint="'--layout'"
        )
    return int(value)


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
    body_format: FormatOpt = None,
    layout: LayoutOpt = None,
) -> None:
    """Write a message; subject and body may use {{ client.full_name }} and {{ client.email }}.

    Markdown and HTML messages go out as HTML with a plain-text alternative, inside a layout.

    Example: mailctl message add --subject "Hello {{ client.first_name }}" --body-file news.md
    """
    app_ctx = app_context(ctx)
    text = text_or_file(body, body_file, name="body", required=True) or ""
    chosen = layout_choice(layout)
    with app_ctx.session() as session:
        message = svc.add_message(
            session=session,
            actor=app_ctx.actor(session),
            subject=subject,
            body=text,
            format=body_format or "markdown",
            layout_id=None if chosen is ... else chosen,
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
    body_format: FormatOpt = None,
    layout: LayoutOpt = None,
) -> None:
    """Change a message's subject, body, format or layout.

    Example: mailctl message edit 2 --subject "Our June news" --format markdown
    """
    app_ctx = app_context(ctx)
    text = text_or_file(body, body_file, name="body", required=False)
    chosen = layout_choice(layout)
    with app_ctx.session() as session:
        svc.edit_message(
            session=session,
            actor=app_ctx.actor(session),
            message_id=message_id,
            subject=subject,
            body=text,
            format=body_format,
            layout_id=chosen,
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
    part: Annotated[
        str,
        typer.Option(
            "--part",
            help="What to print: text (the subject, then the text part) or html.",
            metavar="text|html",
        ),
    ] = "text",
) -> None:
    """Print a message as one client would get it: the subject line and the text part, or
    the HTML part.

    Example: mailctl message preview 2 --client 5 --part html > preview.html
    """
    if part not in ("text", "html"):
        raise typer.BadParameter(f"{part!r}: choose text or html", param_hint="'--part'")
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
            postal_address=settings.delivery.postal_address,
            links=svc.recipient_links(settings, message_id, client),
        )
    if part == "html":
        if rendered.html is None:
            raise Invalid(f"message {message_id} is plain text: it has no HTML part")
        typer.echo(rendered.html, nl=not rendered.html.endswith("\n"))
        return
    typer.echo(f"Subject: {rendered.subject}")
    typer.echo("")
    typer.echo(rendered.body, nl=not rendered.body.endswith("\n"))


@app.command("test")
def test(
    ctx: typer.Context,
    message_id: MessageId,
    to: Annotated[
        str | None,
        typer.Option("--to", help="Send it to this address (default: your own)."),
    ] = None,
    client: Annotated[
        int | None,
        typer.Option("--client", help="Personalise it as this client (default: a sample one)."),
    ] = None,
) -> None:
    """Send yourself one test copy of a message through the configured transport.

    Nothing else is sent: no mailing, no delivery log; the test is logged as a test.

    Example: mailctl message test 2 --to me@example.com --client 5
    """
    from mailctl.services import test_sends

    app_ctx = app_context(ctx)
    with app_ctx.session() as session:
        row = test_sends.send_test(
            session=session,
            actor=app_ctx.actor(session),
            settings=app_ctx.settings,
            message_id=message_id,
            to=to,
            client_id=client,
        )
        sent, status, to_address, reply = (
            test_sends.was_sent(row),
            row.status,
            row.to_address,
            row.response or "",
        )
    if not sent:
        raise Invalid(f"the test to {to_address} was not sent ({status}): {reply}")
    note(f"sent a test of message {message_id} to {to_address}")
