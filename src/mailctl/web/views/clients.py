"""A user's recipients: list with search and paging, add, edit, delete, CSV import."""

from __future__ import annotations

import asyncio
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailctl.errors import Conflict, Invalid, NotFound
from mailctl.services import clients as svc
from mailctl.services.tagging import tags_of
from mailctl.web.downloads import csv_download
from mailctl.web.imports import WAIT_SECONDS, ImportJob
from mailctl.web.limits import limited
from mailctl.web.pages import db, flash, int_or_404, page_args, redirect, render
from mailctl.web.security import checked_form, require_user
from mailctl.web.state import panel

PER_PAGE = 25
# The import streams (flat memory), so the cap is about upload time, not the panel's memory:
# 50 MB is some 800,000 rows.
MAX_IMPORT_BYTES = 50 * 1024 * 1024
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
        return render(request, "user/client_import.html", job=None, error=None)
    # Capped before it is read: Starlette would otherwise spool a file of any size to disk.
    # A file a little over the limit still gets the friendly message below, not a 413.
    capped = limited(request, MAX_IMPORT_BYTES + IMPORT_BODY_SLACK)
    spool = None
    try:
        form = await checked_form(capped, max_part_size=MAX_IMPORT_BYTES)
        upload = form.get("file")
        strict = form.get("strict") == "1"
        if isinstance(upload, UploadFile):
            spool = await run_in_threadpool(_spool, upload)
    finally:
        # Starlette leaves uploaded files open (spooled temp files) unless told; a refused
        # form (403, 413) must not leak them either.
        await capped.close()
    error = None
    if spool is None or spool.stat().st_size == 0:
        error = "choose a CSV file to import"
    elif spool.stat().st_size > MAX_IMPORT_BYTES:
        error = f"the file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MB"
    if error is not None:
        if spool is not None:
            spool.unlink(missing_ok=True)
        return render(request, "user/client_import.html", status_code=400, job=None, error=error)
    assert spool is not None
    job = panel(request).imports.start(user=user, path=spool, strict=strict)
    # A small file is done in a moment: its result at once, as before; a big one's progress.
    assert job.future is not None
    await asyncio.wait([asyncio.wrap_future(job.future)], timeout=WAIT_SECONDS)
    if job.running:
        return redirect(f"/clients/import/{job.id}")
    return _import_result(request, job)


def _spool(upload: UploadFile) -> Path:
    """The upload copied to a temporary file of its own (the import outlives the request),
    at most one byte past the limit."""
    fd, name = tempfile.mkstemp(prefix="mailctl-import-", suffix=".csv")
    with os.fdopen(fd, "wb") as out:
        upload.file.seek(0)
        left = MAX_IMPORT_BYTES + 1
        while left > 0 and (block := upload.file.read(min(left, 1 << 20))):
            out.write(block)
            left -= len(block)
    return Path(name)


def _import_result(request: Request, job: ImportJob) -> Response:
    return render(
        request,
        "user/client_import.html",
        status_code=400 if job.problem else 200,
        job=job,
        error=job.problem,
    )


async def client_import_job(request: Request) -> Response:
    """An import's progress while it runs (the page reloads itself), then its result."""
    user = await require_user(request)
    job = panel(request).imports.get(str(request.path_params["job_id"]), user)
    if job is None:
        raise NotFound("no such import (or it ended more than an hour ago)")
    if job.running:
        return render(request, "user/client_import_progress.html", job=job)
    return _import_result(request, job)


async def client_export(request: Request) -> Response:
    user = await require_user(request)
    return await csv_download(
        request,
        check=lambda s: svc.count_clients(session=s, actor=user),
        pieces=lambda s: svc.export_csv(session=s, actor=user),
        filename="clients.csv",
    )


routes: list[BaseRoute] = [
    Route("/clients", client_list, methods=["GET"]),
    Route("/clients/new", client_new, methods=["GET", "POST"]),
    Route("/clients/import", client_import, methods=["GET", "POST"]),
    Route("/clients/import/{job_id}", client_import_job, methods=["GET"]),
    Route("/clients/export.csv", client_export, methods=["GET"]),
    Route("/clients/{client_id}/edit", client_edit, methods=["GET", "POST"]),
    Route("/clients/{client_id}/delete", client_delete, methods=["POST"]),
]
