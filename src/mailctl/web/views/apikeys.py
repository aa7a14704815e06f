"""The account page's API keys: make one (shown once, on the page that answers), revoke one."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailctl.errors import Invalid
from mailctl.services import apikeys
from mailctl.web.pages import db, flash, int_or_404, redirect
from mailctl.web.security import checked_form, require_user
from mailctl.web.state import panel
from mailctl.web.views.accounts import account_page, field


async def key_add(request: Request) -> Response:
    user = await require_user(request)
    form = await checked_form(request)
    secret = panel(request).links.secret
    try:
        made = await db(
            request,
            lambda s: apikeys.create_key(
                session=s,
                actor=user,
                secret=secret,
                name=field(form, "name"),
                scope=field(form, "scope") or "write",
            ),
        )
    except Invalid as exc:
        return await account_page(request, user, status=400, error=str(exc))
    # Answered here, not through a redirect and a flash: the key must not sit in the session
    # cookie, and it is never shown again.
    response = await account_page(request, user, new_key=made.token)
    response.headers["Cache-Control"] = "no-store"
    return response


async def key_revoke(request: Request) -> Response:
    user = await require_user(request)
    key_id = int_or_404(request.path_params["key_id"])
    await checked_form(request)
    await db(request, lambda s: apikeys.revoke_key(session=s, actor=user, ref=str(key_id)))
    flash(request, f"Revoked API key {key_id}; calls with it are refused from now on.")
    return redirect("/account")


routes: list[BaseRoute] = [
    Route("/account/apikeys", key_add, methods=["POST"], name="apikey_add"),
    Route("/account/apikeys/{key_id}/revoke", key_revoke, methods=["POST"], name="apikey_revoke"),
]
