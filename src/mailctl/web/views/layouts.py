"""A user's email layouts: list, add, edit, delete; each shown only in a sandboxed frame."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailctl.errors import Conflict, Invalid
from mailctl.services import layouts as svc
from mailctl.services.messages import render_limits
from mailctl.services.previews import preview_layout
from mailctl.web.frames import user_html
from mailctl.web.pages import db, flash, int_or_404, redirect, render
from mailctl.web.security import checked_form, require_user
from mailctl.web.state import panel


def _layout_id(request: Request) -> int:
    return int_or_404(request.path_params["layout_id"])


async def layout_list(request: Request) -> Response:
    user = await require_user(request)
    layouts = await db(request, lambda s: svc.list_layouts(session=s, actor=user), readonly=True)
    return render(request, "user/layouts.html", layouts=layouts)


async def _form(
    request: Request, layout: Any, values: dict[str, str], error: str | None, status: int = 200
) -> Response:
    return render(
        request,
        "user/layout_form.html",
        status_code=status,
        layout=layout,
        values=values,
        error=error,
    )


async def layout_new(request: Request) -> Response:
    user = await require_user(request)
    if request.method == "GET":
        return await _form(request, None, {"name": "", "html": svc.default_layout()}, None)
    form = await checked_form(request)
    values = {name: str(form.get(name) or "") for name in ("name", "html")}
    limits = render_limits(panel(request).settings)
    try:
        layout = await db(
            request, lambda s: svc.add_layout(session=s, actor=user, limits=limits, **values)
        )
    except Invalid as exc:
        return await _form(request, None, values, str(exc), exc.http_status)
    flash(request, "Added the layout.")
    return redirect(f"/layouts/{layout.id}")


async def layout_detail(request: Request) -> Response:
    user = await require_user(request)
    layout_id = _layout_id(request)
    layout = await db(
        request, lambda s: svc.get_layout(session=s, actor=user, layout_id=layout_id), readonly=True
    )
    return render(request, "user/layout_detail.html", layout=layout)


async def layout_frame(request: Request) -> Response:
    """A sample Markdown message in the layout (`default` for the built-in one)."""
    user = await require_user(request)
    raw = request.path_params["layout_id"]
    layout_id = None if raw == "default" else int_or_404(raw)
    settings = panel(request).settings
    rendered = await db(
        request,
        lambda s: preview_layout(session=s, actor=user, settings=settings, layout_id=layout_id),
        readonly=True,
    )
    return user_html(rendered.html, rendered.body)


async def layout_edit(request: Request) -> Response:
    user = await require_user(request)
    layout_id = _layout_id(request)
    layout = await db(
        request, lambda s: svc.get_layout(session=s, actor=user, layout_id=layout_id), readonly=True
    )
    if request.method == "GET":
        return await _form(request, layout, {"name": layout.name, "html": layout.html}, None)
    form = await checked_form(request)
    values = {name: str(form.get(name) or "") for name in ("name", "html")}
    limits = render_limits(panel(request).settings)
    try:
        await db(
            request,
            lambda s: svc.edit_layout(
                session=s, actor=user, layout_id=layout_id, limits=limits, **values
            ),
        )
    except Invalid as exc:
        return await _form(request, layout, values, str(exc), exc.http_status)
    flash(request, "Saved the layout.")
    return redirect(f"/layouts/{layout_id}")


async def layout_delete(request: Request) -> Response:
    user = await require_user(request)
    layout_id = _layout_id(request)
    await checked_form(request)
    try:
        await db(request, lambda s: svc.delete_layout(session=s, actor=user, layout_id=layout_id))
    except Conflict as exc:
        flash(request, str(exc), "danger")
        return redirect(f"/layouts/{layout_id}")
    flash(request, "Deleted the layout.")
    return redirect("/layouts")


routes: list[BaseRoute] = [
    Route("/layouts", layout_list, methods=["GET"]),
    Route("/layouts/new", layout_new, methods=["GET", "POST"]),
    Route("/layouts/{layout_id}/preview.html", layout_frame, methods=["GET"]),
    Route("/layouts/{layout_id}", layout_detail, methods=["GET"]),
    Route("/layouts/{layout_id}/edit", layout_edit, methods=["GET", "POST"]),
    Route("/layouts/{layout_id}/delete", layout_delete, methods=["POST"]),
]
