"""Managers and admins: the users list, blocking; admins also change roles."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlencode

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailctl.errors import Conflict, Invalid
from mailctl.models import Role, User
from mailctl.services import users
from mailctl.web.pages import db, flash, int_or_404, page_args, redirect, render
from mailctl.web.security import checked_form, require_user

PER_PAGE = 50
ROLES = [r.value for r in Role]


def _back(request: Request, form_query: str) -> str:
    # Back to the list the action was taken from (same filters and page).
    return "/manage/users" + (f"?{form_query}" if form_query else "")


async def user_list(request: Request) -> Response:
    actor = await require_user(request)
    search = request.query_params.get("q", "").strip()
    role = request.query_params.get("role", "").strip()
    if role not in ROLES:
        role = ""
    page, limit, offset = page_args(request, PER_PAGE)

    def work(session: Session) -> tuple[Sequence[User], int]:
        filters = {"search": search or None, "role": role or None}
        total = users.count_users_visible(session=session, actor=actor, **filters)
        shown = users.list_users(
            session=session, actor=actor, limit=limit, offset=offset, **filters
        )
        return shown, total

    people, total = await db(request, work, readonly=True)
    filters = {k: v for k, v in (("q", search), ("role", role)) if v}
    return render(
        request,
        "manager/users.html",
        people=people,
        total=total,
        page=page,
        has_next=offset + limit < total,
        search=search,
        role=role,
        roles=ROLES,
        query=urlencode(filters),
        back=urlencode(filters | ({"page": str(page)} if page > 1 else {})),
    )


async def _act(request: Request, action: str) -> Response:
    actor = await require_user(request)
    user_id = int_or_404(request.path_params["user_id"])
    form = await checked_form(request)
    back = form.get("back")
    back = back if isinstance(back, str) else ""

    def work(session: Session) -> User:
        if action == "role":
            role = form.get("role")
            return users.set_role(
                session=session,
                actor=actor,
                user_id=user_id,
                role=role if isinstance(role, str) else "",
            )
        return users.set_blocked(
            session=session, actor=actor, user_id=user_id, blocked=action == "block"
        )

    try:
        user = await db(request, work)
    except (Conflict, Invalid) as exc:
        # A refusal the manager can act on (the last admin, oneself): say so on the list.
        flash(request, str(exc).capitalize() + ".", "danger")
        return redirect(_back(request, back))
    done = {"block": "is blocked", "unblock": "is unblocked", "role": f"has the role {user.role}"}
    flash(request, f"{user.email} {done[action]}.")
    return redirect(_back(request, back))


async def block(request: Request) -> Response:
    return await _act(request, "block")


async def unblock(request: Request) -> Response:
    return await _act(request, "unblock")


async def set_role(request: Request) -> Response:
    return await _act(request, "role")


routes: list[BaseRoute] = [
    Route("/manage/users", user_list, name="manage_users"),
    Route("/manage/users/{user_id}/block", block, methods=["POST"], name="user_block"),
    Route("/manage/users/{user_id}/unblock", unblock, methods=["POST"], name="user_unblock"),
    Route("/manage/users/{user_id}/role", set_role, methods=["POST"], name="user_role"),
]
