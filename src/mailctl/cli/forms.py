"""`mailctl form ...` (public sign-up forms with double opt-in)."""

from __future__ import annotations

from typing import Annotated

import typer

from mailctl.cli.context import AppContext, app_context
from mailctl.cli.output import JsonOpt, emit_rows, note
from mailctl.services import signups as svc

app = typer.Typer(no_args_is_help=True)


def _links(app_ctx: AppContext) -> svc.Links:
    return svc.form_links(app_ctx.settings)


@app.command("add")
def add(
    ctx: typer.Context,
    tag: Annotated[
        list[str], typer.Option("--tag", help="Subscribers get this tag; repeat for several.")
    ],
    title: Annotated[str, typer.Option("--title", help="Shown on the form and the mail.")] = "",
    redirect: Annotated[
        str, typer.Option("--redirect", help="Where a confirmed subscriber goes (https://...).")
    ] = "",
) -> None:
    """Create a public sign-up form; prints its URL and an HTML snippet for your website.

    Example: mailctl form add --tag news --title "Our newsletter"
    """
    app_ctx = app_context(ctx)
    links = _links(app_ctx)
    with app_ctx.session() as session:
        form = svc.add_form(
            session=session,
            actor=app_ctx.actor(session),
            tags=tag,
            title=title,
            redirect_url=redirect,
        )
        url, snippet = links.url(f"/subscribe/{form.public_id}"), svc.snippet(form, links)
    note(f"added sign-up form {form.id}; paste this into your website:\n{snippet}")
    typer.echo(url)


@app.command("list")
def list_(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List your sign-up forms with their public URLs.

    Example: mailctl form list --json
    """
    app_ctx = app_context(ctx)
    links = _links(app_ctx)
    with app_ctx.session(readonly=True) as session:
        found = [
            {
                "id": r.form.id,
                "title": r.form.title,
                "tags": " ".join(r.tags),
                "url": links.url(f"/subscribe/{r.form.public_id}"),
                "redirect": r.form.redirect_url,
                "owner_id": r.form.owner_id,
                "created_at": r.form.created_at,
            }
            for r in svc.list_forms(session=session, actor=app_ctx.actor(session))
        ]
    emit_rows(found, columns=("id", "title", "tags", "url"), as_json=as_json, tz=app_ctx.tz)


@app.command("rm")
def rm(ctx: typer.Context, form_id: Annotated[int, typer.Argument(help="Form id.")]) -> None:
    """Delete a sign-up form (its URL stops working; its subscribers stay).

    Example: mailctl form rm 2
    """
    app_ctx = app_context(ctx)
    with app_ctx.session() as session:
        svc.delete_form(session=session, actor=app_ctx.actor(session), form_id=form_id)
    note(f"deleted sign-up form {form_id}")
