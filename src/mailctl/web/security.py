"""Sessions, the current user, CSRF and login throttling."""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse

from mailctl.db import session_scope
from mailctl.models import User
from mailctl.web.state import panel

CSRF_FIELD = "csrf_token"


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return str(token)


async def checked_form(request: Request, *, max_part_size: int = 1024 * 1024) -> FormData:
    """The posted form, after its CSRF token matched the session's; 403 otherwise."""
    form = await request.form(max_part_size=max_part_size)
    sent = form.get(CSRF_FIELD)
    expected = request.session.get("csrf")
    if not expected or not isinstance(sent, str) or not hmac.compare_digest(sent, expected):
        await form.close()  # uploaded parts live in temp files until closed
        raise HTTPException(
            403, "the form has expired or was not sent by this site; reload and try again"
        )
    return form


def login(request: Request, user: User) -> None:
    # A fresh session at login: nothing from before (fixation) survives.
    request.session.clear()
    request.session.update(
        {"uid": user.id, "sv": user.session_version, "csrf": secrets.token_urlsafe(32)}
    )


def logout(request: Request) -> None:
    request.session.clear()


def _load_user(engine: Any, uid: int, version: int) -> User | None:
    with session_scope(engine, readonly=True) as session:
        user = session.get(User, uid)
        if user is None or not user.is_active or user.session_version != version:
            return None
        return user


async def current_user(request: Request) -> User | None:
    """The logged-in user, or None; a blocked user or an ended session is logged out here."""
    if "user" in request.scope:
        known = request.scope["user"]  # looked up once per request
        return known if isinstance(known, User) else None
    uid, version = request.session.get("uid"), request.session.get("sv")
    user = None
    if isinstance(uid, int) and isinstance(version, int):
        user = await run_in_threadpool(_load_user, panel(request).engine, uid, version)
        if user is None:
            request.session.clear()
    request.scope["user"] = user
    return user


class LoginRequired(Exception):
    pass


async def require_user(request: Request) -> User:
    user = await current_user(request)
    if user is None:
        raise LoginRequired()
    return user


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={target}", status_code=303)


def safe_next(target: str | None) -> str:
    """Only same-site paths: never an open redirect."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/dashboard"
