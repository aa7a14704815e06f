"""A user's audience: tags, the suppression list, sign-up forms, and erasing a client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailctl.errors import Conflict, Forbidden, Invalid, NotFound
from mailctl.services import signups, suppressions, tags
from mailctl.services.erasure import erase_client
from mailctl.web.pages import db, flash, int_or_404, redirect, render
from mailctl.web.security import checked_form, require_user
from mailctl.web.state import panel

REFUSALS = (Invalid, Conflict, Forbidden, NotFound)


async def tag_list(request: Request) -> Response:
    user = await require_user(request)
    rows = await db(request, lambda s: tags.list_tags(session=s, actor=user), readonly=True)
    return render(request, "user/tags.html", rows=rows)


async def tag_change(request: Request) -> Response:
    user = await require_user(request)
    form = await checked_form(request)
    name, action = str(form.get("name") or ""), str(form.get("action") or "")
    try:
        if action == "delete":
            await db(request, lambda s: tags.delete_tag(session=s, actor=user, name=name))
            flash(request, f"Deleted tag {name}.")
        else:
            public = action == "public"
            await db(
                request,
                lambda s: tags.set_tag_public(session=s, actor=user, name=name, public=public),
            )
            flash(request, f"Tag {name} is {'public' if public else 'private'} now.")
    except REFUSALS as exc:
        flash(request, str(exc), "danger")
    return redirect("/tags")


async def suppression_list(request: Request) -> Response:
    user = await require_user(request)
    entries = await db(
        request,
        lambda s: suppressions.list_suppressions(session=s, actor=user, include_removed=True),
        readonly=True,
    )
    return render(request, "user/suppression.html", entries=entries)


async def suppression_change(request: Request) -> Response:
    user = await require_user(request)
    form = await checked_form(request)
    secret = panel(request).links.secret
    email, note = str(form.get("email") or ""), str(form.get("note") or "")
    try:
        if form.get("action") == "remove":
            force = form.get("force") == "1"
            await db(
                request,
                lambda s: suppressions.remove_suppression(
                    session=s, actor=user, email=email, secret=secret, note=note, force=force
                ),
            )
            flash(request, f"{email} may be mailed again.")
        else:
            reason = str(form.get("reason") or "manual")
            await db(
                request,
                lambda s: suppressions.add_suppression(
                    session=s, actor=user, email=email, secret=secret, reason=reason, note=note
                ),
            )
            flash(request, f"{email} will never be mailed.")
    except REFUSALS as exc:
        flash(request, str(exc), "danger")
    return redirect("/suppression")


async def form_list(request: Request) -> Response:
    user = await require_user(request)
    links = panel(request).links
    rows = await db(request, lambda s: signups.list_forms(session=s, actor=user), readonly=True)
    shown = [
        (r, links.url(f"/subscribe/{r.form.public_id}"), signups.snippet(r.form, links))
        for r in rows
    ]
    return render(request, "user/forms.html", rows=shown, values={}, error=None)


async def form_new(request: Request) -> Response:
    user = await require_user(request)
    form = await checked_form(request)
    values: dict[str, Any] = {k: str(form.get(k) or "") for k in ("tags", "title", "redirect")}
    names = [t for t in values["tags"].replace(";", ",").split(",") if t.strip()]
    try:
        await db(
            request,
            lambda s: signups.add_form(
                session=s,
                actor=user,
                tags=names,
                title=values["title"],
                redirect_url=values["redirect"],
            ),
        )
    except REFUSALS as exc:
        flash(request, str(exc), "danger")
        return redirect("/forms")
    flash(request, "Added the sign-up form.")
    return redirect("/forms")


async def form_delete(request: Request) -> Response:
    user = await require_user(request)
    form_id = int_or_404(request.path_params["form_id"])
    await checked_form(request)
    await db(request, lambda s: signups.delete_form(session=s, actor=user, form_id=form_id))
    flash(request, "Deleted the sign-up form.")
    return redirect("/forms")


async def client_erase(request: Request) -> Response:
    user = await require_user(request)
    client_id = int_or_404(request.path_params["client_id"])
    await checked_form(request)
    state = panel(request)
    secret, outbox = state.links.secret, Path(state.settings.delivery.outbox_dir)
    await db(
        request,
        lambda s: erase_client(
            session=s, actor=user, client_id=client_id, secret=secret, outbox_dir=outbox
        ),
    )
    flash(request, "Erased the client everywhere; the logs keep only a keyed hash.")
    return redirect("/clients")


routes: list[BaseRoute] = [
    Route("/tags", tag_list, methods=["GET"]),
    Route("/tags/change", tag_change, methods=["POST"]),
    Route("/suppression", suppression_list, methods=["GET"]),
    Route("/suppression/change", suppression_change, methods=["POST"]),
    Route("/forms", form_list, methods=["GET"]),
    Route("/forms/new", form_new, methods=["POST"]),
    Route("/forms/{form_id}/delete", form_delete, methods=["POST"]),
    Route("/clients/{client_id}/erase", client_erase, methods=["POST"]),
]
