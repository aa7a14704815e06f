"""A user's recipients: list with search and paging, add, edit, delete, CSV import."""

from __future__ import annotations

import math
from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailctl.errors import Conflict, Invalid
from mailctl.services import clients as svc
from mailctl.services.tagging import tags_of
from mailctl.web.limits import limited
from mailctl.web.pages import db, flash, int_or_404, page_args, redirect, render
from mailctl.web.security import checked_form, require_user

PER_PAGE = 25
MAX_IMPORT_BYTES = 5 * 1024 * 1024
# Room for the multipart framing and the other fields (CSRF token, strict) around the file.
IMPORT_BODY_SLACK = 64 * 1024


def _fields(form: FormData) -> dict[str, str]:
    return {name: str(form.get(name) or "") for name in ("email", "full_name", "comment")}


def _tags(form: FormData) -> list[str]:
    return [t for t in str(form.get("tags") or "").replace(";", ",").split(",") if t.strip()]


def _attrs(form: FormData, fields: list[str]) -> dict[str, str | None]:
    return {name: str(form.get(f"attr_{name}") or "") for name in fields}


async def client_list(request: Request) -> Response:
    user = await require_user(request)
    search = request.query_params.get("q", "").strip()
    tag = request.query_params.get("tag", "").strip() or None
    page, limit, offset = page_args(request, PER_PAGE)

    def work(session: Any) -> tuple[Any, int, Any]:
        total = svc.count_clients(session=session, actor=user, search=search or None, tag=tag)
        rows = svc.list_clients(
            session=session, actor=user, search=search or None, limit=limit, offset=offset, tag=tag
        )
        return rows, total, tags_of(session, [c.id or 0 for c in rows])

    try:
        rows, total, labels = await db(request, work, readonly=True)
    except Invalid:  # a tag name no tag can have: nothing has it
        rows, total, labels = [], 0, {}
    return render(
        request,
        "user/clients.html",
        clients=rows,
        labels=labels,
        tag=tag or "",
        total=total,
        q=search,
        page=page,
        pages=max(1, math.ceil(total / PER_PAGE)),
    )


async def client_new(request: Request) -> Response:
    user = await require_user(request)
    svc.check_may_add(actor=user)
    values = {"email": "", "full_name": "", "comment": "", "tags": ""}
    if request.method == "GET":
        return render(
            request,
            "user/client_form.html",
            client=None,
            values=values,
            attrs={},
            fields=[],
            error=None,
        )
    form = await checked_form(request)
    values = _fields(form)
    labels = _tags(form)
    try:
        client = await db(
            request, lambda s: svc.add_client(session=s, actor=user, tags=labels, **values)
        )
    except (Invalid, Conflict) as exc:
        return render(
            request,
            "user/client_form.html",
            status_code=exc.http_status,
            client=None,
            values=values | {"tags": ", ".join(labels)},
            attrs={},
            fields=[],  # custom fields are set on the edit page, once the client exists
            error=str(exc),
        )
    flash(request, f"Added client {client.email}.")
    return redirect("/clients")


async def client_edit(request: Request) -> Response:
    user = await require_user(request)
    client_id = int_or_404(request.path_params["client_id"])
    start = await db(
        request,
        lambda s: svc.client_form(session=s, actor=user, client_id=client_id),
        readonly=True,
    )
    client = start.client
    assert client is not None
    if request.method == "GET":
        values = {
            "email": client.email,
            "full_name": client.full_name,
            "comment": client.comment,
            "tags": ", ".join(start.tags),
        }
        return render(
            request,
            "user/client_form.html",
            client=client,
            values=values,
            attrs=client.attrs or {},
            fields=start.fields,
            error=None,
        )
    form = await checked_form(request)
    values = _fields(form)
    labels, attrs = _tags(form), _attrs(form, start.fields)
    try:
        await db(
            request,
            lambda s: svc.edit_client(
                session=s, actor=user, client_id=client_id, attrs=attrs, tags=labels, **values
            ),
        )
    except (Invalid, Conflict) as exc:
        return render(
            request,
            "user/client_form.html",
            status_code=exc.http_status,
            client=client,
            values=values | {"tags": ", ".join(labels)},
            attrs=attrs,
            fields=start.fields,
            error=str(exc),
        )
    flash(request, f"Saved client {values['email']}.")
    return redirect("/clients")


async def client_delete(request: Request) -> Response:
    user = await require_user(request)
    client_id = int_or_404(request.path_params["client_id"])
    await checked_form(request)
    await db(request, lambda s: svc.delete_client(session=s, actor=user, client_id=client_id))
    flash(request, "Deleted the client.")
    return redirect("/clients")


async def client_import(request: Request) -> Response:
    user = await require_user(request)
    svc.check_may_import(actor=user)
    if request.method == "GET":
        return render(request, "user/client_import.html", report=None, error=None)
    # Capped before it is read: Starlette would otherwise spool a file of any size to disk.
    # A file a little over the limit still gets the friendly message below, not a 413.
    capped = limited(request, MAX_IMPORT_BYTES + IMPORT_BODY_SLACK)
    try:
        form = await checked_form(capped, max_part_size=MAX_IMPORT_BYTES)
        upload = form.get("file")
        data = await upload.read(MAX_IMPORT_BYTES + 1) if isinstance(upload, UploadFile) else b""
        strict = form.get("strict") == "1"
    finally:
        # Starlette leaves uploaded files open (spooled temp files) unless told; a refused
        # form (403, 413) must not leak them either.
        await capped.close()
    error = None
    report = None
    if not data:
        error = "choose a CSV file to import"
    elif len(data) > MAX_IMPORT_BYTES:
        error = f"the file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MB"
    else:
        try:
            report = await db(
                request,
                lambda s: svc.import_clients(session=s, actor=user, data=data, strict=strict),
            )
        except Invalid as exc:
            error = str(exc)
    return render(
        request,
        "user/client_import.html",
        status_code=400 if error else 200,
        report=report,
        error=error,
    )


async def client_export(request: Request) -> Response:
    user = await require_user(request)
    text = await db(request, lambda s: svc.export_clients(session=s, actor=user), readonly=True)
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="clients.csv"'},
    )


routes: list[BaseRoute] = [
    Route("/clients", client_list, methods=["GET"]),
    Route("/clients/new", client_new, methods=["GET", "POST"]),
    Route("/clients/import", client_import, methods=["GET", "POST"]),
    Route("/clients/export.csv", client_export, methods=["GET"]),
    Route("/clients/{client_id}/edit", client_edit, methods=["GET", "POST"]),
    Route("/clients/{client_id}/delete", client_delete, methods=["POST"]),
]
