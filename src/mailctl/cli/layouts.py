"""`mailctl layout ...`"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mailctl.cli.context import app_context
from mailctl.cli.messages import text_or_file
from mailctl.cli.output import JsonOpt, emit_one, emit_rows, note, records
from mailctl.services import layouts as svc

app = typer.Typer(no_args_is_help=True)

FIELDS = ("id", "name", "owner_id", "html", "created_at", "updated_at")
COLUMNS = ("id", "name", "owner_id", "updated_at")

LayoutId = Annotated[str, typer.Argument(help="Layout id, or 'default' for the built-in one.")]
HtmlOpt = Annotated[str | None, typer.Option("--html", help="The layout's HTML (a template).")]
HtmlFileOpt = Annotated[
    Path | None, typer.Option("--html-file", help="Read the HTML from this UTF-8 file.")
]


def _layout_id(value: str) -> int:
    if not value.strip().isdigit():
        raise typer.BadParameter(f"{value!r} is not a layout id", param_hint="'ID'")
    return int(value)


@app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="A name to pick it by.")],
    html: HtmlOpt = None,
    html_file: HtmlFileOpt = None,
) -> None:
    """Add an email layout: HTML with {{ content }} and an unsubscribe link.

    Start from the built-in one: mailctl layout show default > layout.html

    Example: mailctl layout add --name Brand --html-file layout.html
    """
    app_ctx = app_context(ctx)
    text = text_or_file(html, html_file, name="html", required=True) or ""
    with app_ctx.session() as session:
        layout = svc.add_layout(
            session=session,
            actor=app_ctx.actor(session),
            name=name,
            html=text,
            limits=app_ctx.render_limits,
        )
    note(f"added layout {layout.id}")
    typer.echo(layout.id)


@app.command("list")
def list_(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List your layouts (the built-in one, 'default', is always there too).

    Example: mailctl layout list --json
    """
    app_ctx = app_context(ctx)
    with app_ctx.session(readonly=True) as session:
        rows = svc.list_layouts(session=session, actor=app_ctx.actor(session))
    emit_rows(
        records(rows, FIELDS), columns=COLUMNS, as_json=as_json, tz=app_ctx.tz, title="Layouts"
    )


@app.command("show")
def show(ctx: typer.Context, layout_id: LayoutId, as_json: JsonOpt = False) -> None:
    """Show a layout with its HTML; 'default' prints the built-in layout's HTML.

    Example: mailctl layout show default
    """
    if layout_id.strip().lower() == "default":
        html = svc.default_layout()
        if as_json:
            emit_one({"id": None, "name": "default", "html": html}, as_json=True, tz="UTC")
        else:
            typer.echo(html, nl=not html.endswith("\n"))
        return
    app_ctx = app_context(ctx)
    with app_ctx.session(readonly=True) as session:
        layout = svc.get_layout(
            session=session, actor=app_ctx.actor(session), layout_id=_layout_id(layout_id)
        )
    emit_one(records([layout], FIELDS)[0], as_json=as_json, tz=app_ctx.tz)


@app.command("edit")
def edit(
    ctx: typer.Context,
    layout_id: LayoutId,
    name: Annotated[str | None, typer.Option("--name", help="New name.")] = None,
    html: HtmlOpt = None,
    html_file: HtmlFileOpt = None,
) -> None:
    """Change a layout's name or HTML; messages in it use the new HTML from then on.

    Example: mailctl layout edit 1 --html-file layout.html
    """
    app_ctx = app_context(ctx)
    text = text_or_file(html, html_file, name="html", required=False)
    with app_ctx.session() as session:
        svc.edit_layout(
            session=session,
            actor=app_ctx.actor(session),
            layout_id=_layout_id(layout_id),
            name=name,
            html=text,
            limits=app_ctx.render_limits,
        )
    note(f"updated layout {layout_id}")


@app.command("rm")
def rm(ctx: typer.Context, layout_id: LayoutId) -> None:
    """Delete a layout that no message uses.

    Example: mailctl layout rm 1
    """
    app_ctx = app_context(ctx)
    with app_ctx.session() as session:
        svc.delete_layout(
            session=session, actor=app_ctx.actor(session), layout_id=_layout_id(layout_id)
        )
    note(f"deleted layout {layout_id}")
