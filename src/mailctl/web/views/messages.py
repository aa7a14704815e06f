"""A user's messages: list, add, edit, delete, and a preview rendered for one client."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailctl.errors import Conflict, Invalid
from mailctl.services import messages as svc
from mailctl.web.pages import db, flash, int_or_404, redirect, render
from mailctl.web.security import checked_form, require_user
from mailctl.web.state import panel

# The preview's client picker lists this many; a client beyond them can be given by id.
PICKER_LIMIT = 200


def _limits(request: Request) -> svc.RenderLimits:
    return svc.render_limits(panel(request).settings)


def _fields(form: FormData) -> dict[str, str]:
    return {name: str(form.get(name) or "") for name in ("subject", "body")}


async def message_list(request: Request) -> Response:
    user = await require_user(request)
    messages = await db(request, lambda s: svc.list_messages(session=s, actor=user), readonly=True)
    return render(request, "user/messages.html", messages=messages)


async def message_new(request: Request) -> Response:
    user = await require_user(request)
    svc.check_may_write(actor=user)
    if request.method == "GET":
        values = {"subject": "", "body": "Hello {{ client.full_name }},\n\n"}
        return render(request, "user/message_form.html", message=None, values=values, error=None)
    values = _fields(await checked_form(request))
    try:
        message = await db(
            request,
            lambda s: svc.add_message(session=s, actor=user, limits=_limits(request), **values),
        )
    except Invalid as exc:
        return render(
            request,
            "user/message_form.html",
            status_code=exc.http_status,
            message=None,
            values=values,
            error=str(exc),
        )
    flash(request, "Added the message.")
    return redirect(f"/messages/{message.id}")


async def message_detail(request: Request) -> Response:
    """The message with a preview for the chosen client (?client=ID, else the first one)."""
    user = await require_user(request)
    message_id = int_or_404(request.path_params["message_id"])
    settings = panel(request).settings
    wanted = request.query_params.get("client", "")

    def work(session: Any) -> dict[str, Any]:
        message = svc.get_message(session=session, actor=user, message_id=message_id)
        clients = list(
            svc.preview_clients(
                session=session, actor=user, message_id=message_id, limit=PICKER_LIMIT
            )
        )
        chosen = int(wanted) if wanted.isdigit() else (clients[0].id if clients else None)
        preview, error = None, None
        if chosen is not None:
            try:
                preview = svc.preview_message(
                    session=session,
                    actor=user,
                    message_id=message_id,
                    client_id=chosen,
                    from_address=settings.delivery.from_address,
                    from_name=settings.delivery.from_name,
                    limits=_limits(request),
                )
            except (Invalid, Conflict) as exc:
                error = str(exc)
        return {
            "message": message,
            "clients": clients,
            "chosen": chosen,
            "preview": preview,
            "preview_error": error,
        }

    return render(request, "user/message_detail.html", **await db(request, work, readonly=True))


async def message_edit(request: Request) -> Response:
    user = await require_user(request)
    message_id = int_or_404(request.path_params["message_id"])
    message = await db(
        request,
        lambda s: svc.get_message(session=s, actor=user, message_id=message_id),
        readonly=True,
    )
    if request.method == "GET":
        values = {"subject": message.subject, "body": message.body}
        return render(request, "user/message_form.html", message=message, values=values, error=None)
    values = _fields(await checked_form(request))
    try:
        await db(
            request,
            lambda s: svc.edit_message(
                session=s, actor=user, message_id=message_id, limits=_limits(request), **values
            ),
        )
    except Invalid as exc:
        return render(
            request,
            "user/message_form.html",
            status_code=exc.http_status,
            message=message,
            values=values,
            error=str(exc),
        )
    flash(request, "Saved the message.")
    return redirect(f"/messages/{message_id}")


async def message_delete(request: Request) -> Response:
    user = await require_user(request)
    message_id = int_or_404(request.path_params["message_id"])
    await checked_form(request)
    try:
        await db(
            request, lambda s: svc.delete_message(session=s, actor=user, message_id=message_id)
        )
    except Conflict as exc:
        flash(request, str(exc), "danger")
        return redirect(f"/messages/{message_id}")
    flash(request, "Deleted the message.")
    return redirect("/messages")


routes: list[BaseRoute] = [
    Route("/messages", message_list, methods=["GET"]),
    Route("/messages/new", message_new, methods=["GET", "POST"]),
    Route("/messages/{message_id}", message_detail, methods=["GET"]),
    Route("/messages/{message_id}/edit", message_edit, methods=["GET", "POST"]),
    Route("/messages/{message_id}/delete", message_delete, methods=["POST"]),
]
