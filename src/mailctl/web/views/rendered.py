"""Messages as recipients see them: a mailing's message for whoever may oversee the mailing
(a manager looks at other users' newsletters here), and the public "view in browser" page.
The HTML is the user's: a sandboxed frame on the panel page, a sandboxing CSP on its own."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailctl.services import previews
from mailctl.web.frames import user_html
from mailctl.web.pages import db, int_or_404, render
from mailctl.web.security import require_user
from mailctl.web.state import panel


async def mailing_message(request: Request) -> Response:
    user = await require_user(request)
    mailing_id = int_or_404(request.path_params["mailing_id"])
    settings = panel(request).settings
    message, rendered = await db(
        request,
        lambda s: previews.preview_mailing_message(
            session=s, actor=user, settings=settings, mailing_id=mailing_id
        ),
        readonly=True,
    )
    return render(
        request,
        "user/mailing_message.html",
        mailing_id=mailing_id,
        message=message,
        preview=rendered,
    )


async def mailing_message_frame(request: Request) -> Response:
    user = await require_user(request)
    mailing_id = int_or_404(request.path_params["mailing_id"])
    settings = panel(request).settings
    _message, rendered = await db(
        request,
        lambda s: previews.preview_mailing_message(
            session=s, actor=user, settings=settings, mailing_id=mailing_id
        ),
        readonly=True,
    )
    return user_html(rendered.html, rendered.body)


async def view_in_browser(request: Request) -> Response:
    """The signed link in every newsletter: the message as that recipient got it."""
    token = request.path_params["token"]
    settings = panel(request).settings
    if token == "test":  # the link in a test send's footer
        return user_html(None, "This link was in a test message: it does nothing.", framed=False)
    rendered = await db(
        request,
        lambda s: previews.view_in_browser(session=s, settings=settings, token=token),
        readonly=True,
    )
    return user_html(rendered.html, rendered.body, framed=False)


routes: list[BaseRoute] = [
    Route("/mailings/{mailing_id}/message", mailing_message, methods=["GET"]),
    Route("/mailings/{mailing_id}/message.html", mailing_message_frame, methods=["GET"]),
    Route("/view/{token}", view_in_browser, methods=["GET"]),
]
