"""A user's messages: list, add, edit, delete, a preview rendered for one client (its HTML
in a sandboxed frame, web/frames.py) and a test send."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailctl.errors import Conflict, Invalid
from mailctl.services import layouts as layout_svc
from mailctl.services import messages as svc
from mailctl.services import previews, test_sends
from mailctl.web.frames import user_html
from mailctl.web.pages import db, flash, int_or_404, redirect, render
from mailctl.web.security import checked_form, require_user
from mailctl.web.state import panel

# The preview's client picker lists this many; a client beyond them can be given by id.
PICKER_LIMIT = 200


def _limits(request: Request) -> svc.RenderLimits:
    return svc.render_limits(panel(request).settings)


def _fields(form: FormData) -> dict[str, Any]:
    values: dict[str, Any] = {
        name: str(form.get(name) or "") for name in ("subject", "body", "format")
    }
    layout = str(form.get("layout") or "")
    values["layout_id"] = int(layout) if layout.isdigit() and len(layout) < 19 else None
    return values


async def _form(
    request: Request, user: Any, message: Any, values: dict[str, Any], error: str | None, **kw: Any
) -> Response:
    """The message form, with the owner's layouts to pick from."""
    owner_id = message.owner_id if message is not None else user.id
    layouts = await db(
        request,
        lambda s: layout_svc.list_layouts(session=s, actor=user, owner_id=owner_id),
        readonly=True,
    )
    return render(
        request,
        "user/message_form.html",
        message=message,
        values=values,
        error=error,
        layouts=layouts,
        formats=svc.FORMATS,
        **kw,
    )


async def message_list(request: Request) -> Response:
    user = await require_user(request)
    messages = await db(request, lambda s: svc.list_messages(session=s, actor=user), readonly=True)
    return render(request, "user/messages.html", messages=messages)


async def message_new(request: Request) -> Response:
    user = await require_user(request)
    svc.check_may_write(actor=user)
    values: dict[str, Any]
    if request.method == "GET":
        values = {
            "subject": "",
            "body": "Hello {{ client.first_name }},\n\n",
            "format": "markdown",
            "layout_id": None,
        }
        return await _form(request, user, None, values, None)
    values = _fields(await checked_form(request))
    try:
        message = await db(
            request,
            lambda s: svc.add_message(
                session=s,
                actor=user,
                limits=_limits(request),
                subject=values["subject"],
                body=values["body"],
                format=values["format"] or "markdown",  # a form without the field
                layout_id=values["layout_id"],
            ),
        )
    except Invalid as exc:
        return await _form(request, user, None, values, str(exc), status_code=exc.http_status)
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
        chosen = _client_choice(wanted, clients)
        preview, error = None, None
        try:
            preview = previews.preview_for_client(
                session=session,
                actor=user,
                settings=settings,
                message_id=message_id,
                client_id=chosen,
            )
        except (Invalid, Conflict) as exc:
            error = str(exc)
        return {
            "message": message,
            "clients": clients,
            "chosen": chosen,
            "preview": preview,
            "preview_error": error,
            "layout": svc.message_layout(session, message),
            "tests": test_sends.list_test_sends(
                session=session, actor=user, message_id=message_id, limit=5
            ),
        }

    return render(request, "user/message_detail.html", **await db(request, work, readonly=True))


def _client_choice(wanted: str, clients: list[Any]) -> int | None:
    """?client=ID, "sample" for the sample client, else the first client (or the sample)."""
    if wanted.isdigit() and len(wanted) < 19:
        return int(wanted)
    if wanted == "sample" or not clients:
        return None
    return int(clients[0].id)


async def message_preview_frame(request: Request) -> Response:
    """The preview's HTML part, for the sandboxed frame on the message page only."""
    user = await require_user(request)
    message_id = int_or_404(request.path_params["message_id"])
    wanted = request.query_params.get("client", "sample")
    settings = panel(request).settings
    rendered = await db(
        request,
        lambda s: previews.preview_for_client(
            session=s,
            actor=user,
            settings=settings,
            message_id=message_id,
            client_id=_client_choice(wanted, []),
        ),
        readonly=True,
    )
    return user_html(rendered.html, rendered.body)


async def message_test(request: Request) -> Response:
    """ "Send me a test": to the given address (one's own by default), as the chosen client."""
    user = await require_user(request)
    message_id = int_or_404(request.path_params["message_id"])
    form = await checked_form(request)
    to = str(form.get("to") or "").strip() or None
    client_id = _client_choice(str(form.get("client") or "sample"), [])
    settings = panel(request).settings
    back = f"/messages/{message_id}" + (f"?client={client_id}" if client_id else "?client=sample")
    try:
        row = await db(
            request,
            lambda s: test_sends.send_test(
                session=s,
                actor=user,
                settings=settings,
                message_id=message_id,
                to=to,
                client_id=client_id,
            ),
        )
    except (Invalid, Conflict) as exc:
        flash(request, str(exc), "danger")
        return redirect(back)
    if test_sends.was_sent(row):
        flash(request, f"Sent a test to {row.to_address}.")
    else:
        flash(request, f"The test to {row.to_address} was not sent: {row.response}", "danger")
    return redirect(back)


async def message_edit(request: Request) -> Response:
    user = await require_user(request)
    message_id = int_or_404(request.path_params["message_id"])
    message = await db(
        request,
        lambda s: svc.get_message(session=s, actor=user, message_id=message_id),
        readonly=True,
    )
    values: dict[str, Any]
    if request.method == "GET":
        values = {
            "subject": message.subject,
            "body": message.body,
            "format": message.format,
            "layout_id": message.layout_id,
        }
        return await _form(request, user, message, values, None)
    values = _fields(await checked_form(request))
    try:
        await db(
            request,
            lambda s: svc.edit_message(
                session=s,
                actor=user,
                message_id=message_id,
                limits=_limits(request),
                subject=values["subject"],
                body=values["body"],
                format=values["format"] or None,
                layout_id=values["layout_id"],
            ),
        )
    except Invalid as exc:
        return await _form(request, user, message, values, str(exc), status_code=exc.http_status)
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
    Route("/messages/{message_id}/preview.html", message_preview_frame, methods=["GET"]),
    Route("/messages/{message_id}/test", message_test, methods=["POST"]),
    Route("/messages/{message_id}/edit", message_edit, methods=["GET", "POST"]),
    Route("/messages/{message_id}/delete", message_delete, methods=["POST"]),
]
