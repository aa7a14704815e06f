"""Mailings: the dashboard, list, add, edit, delete, enable/disable, send now, detail, log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailctl.errors import Invalid, NotFound
from mailctl.models import Mailing
from mailctl.scheduling.passes import clock_of
from mailctl.services import mailing_rows, reports, runs
from mailctl.services import mailings as svc
from mailctl.services.access import capabilities
from mailctl.services.reports import LOG_STATUSES
from mailctl.timeutil import parse_when, to_local
from mailctl.web.chart import localise, outcome_svg
from mailctl.web.pages import db, flash, int_or_404, page_args, redirect, render
from mailctl.web.security import checked_form, require_user, safe_next
from mailctl.web.state import panel

PER_PAGE = 25
STATUSES = ("created", "started", "finished", "disabled")
EVERY = (("once", "Once"), ("day", "Daily"), ("week", "Weekly"), ("month", "Monthly"))
REFRESH_SECONDS = 3


def _mailing_id(request: Request) -> int:
    return int_or_404(request.path_params["mailing_id"])


def _local_input(value: datetime | None, tz: str) -> str:
    """The value of an <input type="datetime-local"> in the configured zone."""
    return to_local(value, tz).strftime("%Y-%m-%dT%H:%M") if value is not None else ""


def _submit_if_due(request: Request, mailing: Mailing) -> bool:
    if mailing.id is not None and svc.is_due(mailing):
        panel(request).sender.submit(mailing.id)
        return True
    return False


# --- dashboard -------------------------------------------------------------------------------


async def dashboard(request: Request) -> Response:
    user = await require_user(request)
    sees_mailings = capabilities(user).can_view_mailings

    def work(session: Session) -> dict[str, Any]:
        stats = svc.stats(session=session, actor=user)
        recent: list[Mailing] = []
        if sees_mailings:
            recent = list(svc.recent_mailings(session=session, actor=user, count=5))
        return {"stats": stats, "recent": recent}

    data = await db(request, work, readonly=True)
    return render(
        request,
        "user/dashboard.html",
        **data,
        status_of=svc.display_status,
    )


# --- list ------------------------------------------------------------------------------------


async def mailing_list(request: Request) -> Response:
    user = await require_user(request)
    status = request.query_params.get("status", "").strip() or None
    page, limit, offset = page_args(request, PER_PAGE)

    def work(session: Session) -> dict[str, Any]:
        # One row more than a page tells whether there is a next page, without a count.
        rows = mailing_rows.list_mailing_rows(
            session=session, actor=user, status=status, limit=limit + 1, offset=offset
        )
        shown = rows[:limit]
        return {
            "rows": shown,
            "has_next": len(rows) > limit,
            "show_owner": any(r.owner_email is not None for r in shown),
        }

    data = await db(request, work, readonly=True)
    return render(
        request,
        "user/mailings.html",
        **data,
        status=status or "",
        statuses=STATUSES,
        page=page,
        status_of=svc.display_status,
        every_names=dict(EVERY),
    )


# --- add and edit ----------------------------------------------------------------------------


@dataclass
class FormValues:
    message_id: str = ""
    client_ids: tuple[int, ...] = ()
    all_clients: bool = False
    tags: tuple[str, ...] = ()  # a mailing to tags, resolved at each run
    start: str = ""
    end: str = ""
    every: str = "once"


def _read_form(form: FormData) -> FormValues:
    ids = []
    for raw in form.getlist("client_ids"):
        if isinstance(raw, str) and raw.strip().isdigit():
            ids.append(int(raw))
    return FormValues(
        message_id=str(form.get("message_id") or "").strip(),
        client_ids=tuple(ids),
        all_clients=form.get("all_clients") == "1",
        tags=tuple(t for t in form.getlist("tags") if isinstance(t, str) and t.strip()),
        start=str(form.get("start") or "").strip(),
        end=str(form.get("end") or "").strip(),
        every=str(form.get("every") or "once").strip(),
    )


def _choices(form: svc.MailingForm) -> dict[str, Any]:
    return {"messages": form.messages, "clients": form.clients, "tag_choices": form.tag_choices}


def _explicit(values: FormValues) -> tuple[int, ...] | None:
    """The picked clients, unless the form says tags or all (then the picks do not count)."""
    return None if values.all_clients or values.tags else values.client_ids


def _message_choice(values: FormValues) -> int:
    if not values.message_id.isdigit():
        raise Invalid("choose a message")
    return int(values.message_id)


def _render_form(
    request: Request,
    *,
    mailing: Mailing | None,
    values: FormValues,
    choices: dict[str, Any],
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "user/mailing_form.html",
        status_code=status_code,
        mailing=mailing,
        values=values,
        error=error,
        every_choices=EVERY,
        **choices,
    )


async def mailing_new(request: Request) -> Response:
    user = await require_user(request)
    settings = panel(request).settings
    tz = settings.timezone
    choices = _choices(
        await db(request, lambda s: svc.new_mailing_form(session=s, actor=user), readonly=True)
    )
    if request.method == "GET":
        values = FormValues(message_id=request.query_params.get("message", ""))
        return _render_form(request, mailing=None, values=values, choices=choices)

    values = _read_form(await checked_form(request))
    try:
        message_id = _message_choice(values)
        start = parse_when(values.start or "now", tz)
        end = parse_when(values.end, tz) if values.end else None
        mailing = await db(
            request,
            lambda s: svc.add_mailing(
                session=s,
                actor=user,
                message_id=message_id,
                start=start,
                every=values.every,
                end=end,
                client_ids=_explicit(values),
                all_clients=values.all_clients,
                tags=values.tags or None,
                clock=clock_of(settings),
            ),
        )
    except (Invalid, NotFound) as exc:
        # A message or client id that is not the user's is a form mistake here, never a leak:
        # the service answers the same "not found" for others' ids and for made-up ones.
        return _render_form(
            request,
            mailing=None,
            values=values,
            choices=choices,
            error=str(exc),
            status_code=400,
        )
    if _submit_if_due(request, mailing):
        flash(request, f"Created mailing {mailing.id}; sending has started.")
    else:
        flash(request, f"Created mailing {mailing.id}; it starts by itself when its time comes.")
    return redirect(f"/mailings/{mailing.id}")


async def mailing_edit(request: Request) -> Response:
    user = await require_user(request)
    mailing_id = _mailing_id(request)
    settings = panel(request).settings
    tz = settings.timezone

    form = await db(
        request,
        lambda s: svc.edit_mailing_form(session=s, actor=user, mailing_id=mailing_id),
        readonly=True,
    )
    assert form.mailing is not None
    mailing, choices = form.mailing, _choices(form)
    if request.method == "GET":
        values = FormValues(
            message_id=str(mailing.message_id),
            client_ids=tuple(form.client_ids),
            all_clients=form.audience == "all",
            tags=tuple(form.tags),
            start=_local_input(mailing.start_at, tz),
            end=_local_input(mailing.end_at, tz),
            every=mailing.every,
        )
        return _render_form(request, mailing=mailing, values=values, choices=choices)

    values = _read_form(await checked_form(request))
    try:
        message_id = _message_choice(values)
        start = parse_when(values.start, tz) if values.start else None  # blank: as it was
        end = parse_when(values.end, tz) if values.end else None  # blank: no end
        updated = await db(
            request,
            lambda s: svc.edit_mailing(
                session=s,
                actor=user,
                mailing_id=mailing_id,
                message_id=message_id,
                start=start,
                end=end,
                clear_end=end is None,
                every=values.every,
                client_ids=_explicit(values),
                all_clients=values.all_clients,
                tags=values.tags or None,
                clock=clock_of(settings),
            ),
        )
    except (Invalid, NotFound) as exc:
        return _render_form(
            request,
            mailing=mailing,
            values=values,
            choices=choices,
            error=str(exc),
            status_code=400,
        )
    if _submit_if_due(request, updated):
        flash(request, "Saved the mailing; its run is due, so sending has started.")
    else:
        flash(request, "Saved the mailing.")
    return redirect(f"/mailings/{mailing_id}")


# --- actions ---------------------------------------------------------------------------------


async def mailing_delete(request: Request) -> Response:
    user = await require_user(request)
    mailing_id = _mailing_id(request)
    await checked_form(request)
    await db(request, lambda s: svc.delete_mailing(session=s, actor=user, mailing_id=mailing_id))
    flash(request, f"Deleted mailing {mailing_id} with its log.")
    return redirect("/mailings")


async def _set_enabled(request: Request, *, enabled: bool) -> Response:
    user = await require_user(request)
    mailing_id = _mailing_id(request)
    form = await checked_form(request)
    mailing = await db(
        request,
        lambda s: svc.set_enabled(session=s, actor=user, mailing_id=mailing_id, enabled=enabled),
    )
    if enabled and _submit_if_due(request, mailing):
        flash(request, f"Enabled mailing {mailing_id}; its due run is being sent.")
    else:
        flash(request, f"{'Enabled' if enabled else 'Disabled'} mailing {mailing_id}.")
    back = form.get("next")
    return redirect(
        safe_next(back) if isinstance(back, str) and back else f"/mailings/{mailing_id}"
    )


async def mailing_enable(request: Request) -> Response:
    return await _set_enabled(request, enabled=True)


async def mailing_disable(request: Request) -> Response:
    return await _set_enabled(request, enabled=False)


async def mailing_send(request: Request) -> Response:
    """Send now: make the next run due and hand the mailing to the background sender."""
    user = await require_user(request)
    mailing_id = _mailing_id(request)
    await checked_form(request)
    try:
        await db(
            request,
            lambda s: runs.bring_forward(
                session=s,
                actor=user,
                mailing_id=mailing_id,
                clock=clock_of(panel(request).settings),
            ),
        )
    except Invalid as exc:
        flash(request, str(exc), "danger")
        return redirect(f"/mailings/{mailing_id}")
    panel(request).sender.submit(mailing_id)
    flash(request, "Sending has started; this page shows its progress.")
    return redirect(f"/mailings/{mailing_id}")


# --- detail and log --------------------------------------------------------------------------


async def mailing_detail(request: Request) -> Response:
    user = await require_user(request)
    mailing_id = _mailing_id(request)
    tz = panel(request).settings.timezone

    def work(session: Session) -> dict[str, Any]:
        row = mailing_rows.get_mailing_row(session=session, actor=user, mailing_id=mailing_id)
        report = reports.mailing_report(session=session, actor=user, mailing_id=mailing_id)
        series = reports.outcome_series(session=session, actor=user, mailing_id=mailing_id)
        return {
            "mailing": row.mailing,
            "report": report,
            "series": series,
            "subject": row.subject,
            "owner": row.owner_email or "",
            "client_count": row.client_count,
            "runs": reports.list_runs(session=session, actor=user, mailing_id=mailing_id),
        }

    data = await db(request, work, readonly=True)
    mailing, report = data["mailing"], data["report"]
    # Reload while a run is being sent or about to start; deferred rows wait minutes for their
    # retry, so they do not keep the page reloading.
    busy = report.counts["pending"] + report.counts["sending"] > 0 or svc.is_due(mailing)
    response = render(
        request,
        "user/mailing_detail.html",
        **data,
        chart=outcome_svg(localise(data["series"], tz)),
        status=svc.display_status(mailing),
        refresh=REFRESH_SECONDS if busy else None,
        every_names=dict(EVERY),
    )
    if busy:
        response.headers["Refresh"] = str(REFRESH_SECONDS)
    return response


async def mailing_attempts(request: Request) -> Response:
    """The attempts log: status filter, 50 a page, "older"/"newer" links carry a keyset cursor
    (a bare ?page=N, from a typed or old link, still works by offset)."""
    user = await require_user(request)
    mailing_id = _mailing_id(request)
    query = request.query_params
    page, _limit, _offset = page_args(request, reports.LOG_PAGE)
    log = await db(
        request,
        lambda s: reports.attempts_page(
            session=s,
            actor=user,
            mailing_id=mailing_id,
            status=query.get("status", "").strip() or None,
            page=page,
            before=query.get("before", ""),
            after=query.get("after", ""),
        ),
        readonly=True,
    )
    return render(
        request,
        "user/mailing_attempts.html",
        mailing=log.mailing,
        attempts=log.attempts,
        total=log.total,
        status=log.status or "",
        statuses=LOG_STATUSES,
        page=log.page,
        pages=log.pages,
        capped=log.capped,
        count_cap=log.count_cap,
        links={"newest": log.newest, "newer": log.newer, "older": log.older},
    )


async def mailing_attempts_csv(request: Request) -> Response:
    user = await require_user(request)
    mailing_id = _mailing_id(request)
    text = await db(
        request,
        lambda s: reports.attempts_csv(session=s, actor=user, mailing_id=mailing_id),
        readonly=True,
    )
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="mailing-{mailing_id}-log.csv"'},
    )


routes: list[BaseRoute] = [
    Route("/dashboard", dashboard, methods=["GET"]),
    Route("/mailings", mailing_list, methods=["GET"]),
    Route("/mailings/new", mailing_new, methods=["GET", "POST"]),
    Route("/mailings/{mailing_id}", mailing_detail, methods=["GET"]),
    Route("/mailings/{mailing_id}/edit", mailing_edit, methods=["GET", "POST"]),
    Route("/mailings/{mailing_id}/delete", mailing_delete, methods=["POST"]),
    Route("/mailings/{mailing_id}/enable", mailing_enable, methods=["POST"]),
    Route("/mailings/{mailing_id}/disable", mailing_disable, methods=["POST"]),
    Route("/mailings/{mailing_id}/send", mailing_send, methods=["POST"]),
    Route("/mailings/{mailing_id}/attempts", mailing_attempts, methods=["GET"]),
    Route("/mailings/{mailing_id}/attempts.csv", mailing_attempts_csv, methods=["GET"]),
]
