"""Mailings: the dashboard, list, add, edit, delete, enable/disable, send now, detail, log."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailctl.errors import Invalid, NotFound
from mailctl.models import DeliveryAttempt, Mailing
from mailctl.scheduling.passes import clock_of
from mailctl.services import mailings as svc
from mailctl.services import reports, runs
from mailctl.services.access import CONTENT_ROLES
from mailctl.services.reports import LOG_STATUSES
from mailctl.timeutil import parse_when, to_local
from mailctl.web.chart import localise, outcome_svg
from mailctl.web.pages import MAX_ID, db, flash, int_or_404, page_args, redirect, render
from mailctl.web.security import checked_form, require_user, safe_next
from mailctl.web.worker import worker_of

PER_PAGE = 25
# Past this many attempts the log says "more than" instead of counting every row per page.
LOG_COUNT_CAP = 10_000
LOG_PAGE = 50
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
        worker_of(request.app).submit(mailing.id)
        return True
    return False


# --- dashboard -------------------------------------------------------------------------------


async def dashboard(request: Request) -> Response:
    user = await require_user(request)
    sees_mailings = user.role in svc.VIEW_ROLES

    def work(session: Session) -> dict[str, Any]:
        stats = svc.stats(session=session, actor=user)
        recent: list[Mailing] = []
        if sees_mailings:
            recent = list(svc.recent_mailings(session=session, actor=user, count=5))
        steps = None
        if user.role in CONTENT_ROLES:
            steps = svc.first_steps(session=session, actor=user)
        return {"stats": stats, "recent": recent, "steps": steps}

    data = await db(request, work, readonly=True)
    return render(
        request,
        "user/dashboard.html",
        **data,
        sees_mailings=sees_mailings,
        can_edit=user.role in CONTENT_ROLES,
        status_of=svc.display_status,
    )


# --- list ------------------------------------------------------------------------------------


async def mailing_list(request: Request) -> Response:
    user = await require_user(request)
    status = request.query_params.get("status", "").strip() or None
    page, limit, offset = page_args(request, PER_PAGE)

    def work(session: Session) -> dict[str, Any]:
        # One row more than a page tells whether there is a next page, without a count.
        rows = svc.list_mailing_rows(
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
        can_edit=user.role in CONTENT_ROLES,
        status_of=svc.display_status,
        every_names=dict(EVERY),
    )


# --- add and edit ----------------------------------------------------------------------------


@dataclass
class FormValues:
    message_id: str = ""
    client_ids: tuple[int, ...] = ()
    all_clients: bool = False
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
        start=str(form.get("start") or "").strip(),
        end=str(form.get("end") or "").strip(),
        every=str(form.get("every") or "once").strip(),
    )


def _choices(form: svc.MailingForm) -> dict[str, Any]:
    return {"messages": form.messages, "clients": form.clients}


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
    settings = request.app.state.settings
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
                client_ids=values.client_ids,
                all_clients=values.all_clients,
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
    settings = request.app.state.settings
    tz = settings.timezone

    form = await db(
        request,
        lambda s: svc.edit_mailing_form(session=s, actor=user, mailing_id=mailing_id),
        readonly=True,
    )
    assert form.mailing is not None
    mailing, current_ids, choices = form.mailing, form.client_ids, _choices(form)
    if request.method == "GET":
        values = FormValues(
            message_id=str(mailing.message_id),
            client_ids=tuple(current_ids),
            start=_local_input(mailing.start_at, tz),
            end=_local_input(mailing.end_at, tz),
            every=mailing.every,
        )
        return _render_form(request, mailing=mailing, values=values, choices=choices)

    values = _read_form(await checked_form(request))
    # Only what changed goes to the service: an unchanged start that has passed is not an error.
    try:
        message_id = _message_choice(values)
        start = None
        if values.start and values.start != _local_input(mailing.start_at, tz):
            start = parse_when(values.start, tz)
        end, clear_end = None, False
        if not values.end:
            clear_end = mailing.end_at is not None
        elif values.end != _local_input(mailing.end_at, tz):
            end = parse_when(values.end, tz)
        client_ids = None
        if not values.all_clients and set(values.client_ids) != set(current_ids):
            client_ids = values.client_ids
        updated = await db(
            request,
            lambda s: svc.edit_mailing(
                session=s,
                actor=user,
                mailing_id=mailing_id,
                message_id=message_id if message_id != mailing.message_id else None,
                start=start,
                end=end,
                clear_end=clear_end,
                every=values.every if values.every != mailing.every else None,
                client_ids=client_ids,
                all_clients=values.all_clients,
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
                clock=clock_of(request.app.state.settings),
            ),
        )
    except Invalid as exc:
        flash(request, str(exc), "danger")
        return redirect(f"/mailings/{mailing_id}")
    worker_of(request.app).submit(mailing_id)
    flash(request, "Sending has started; this page shows its progress.")
    return redirect(f"/mailings/{mailing_id}")


# --- detail and log --------------------------------------------------------------------------


async def mailing_detail(request: Request) -> Response:
    user = await require_user(request)
    mailing_id = _mailing_id(request)
    tz = request.app.state.settings.timezone

    def work(session: Session) -> dict[str, Any]:
        row = svc.get_mailing_row(session=session, actor=user, mailing_id=mailing_id)
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
        chart_compact=outcome_svg(localise(data["series"], tz), compact=True),
        status=svc.display_status(mailing),
        can_edit=user.role in CONTENT_ROLES,
        refresh=REFRESH_SECONDS if busy else None,
        every_names=dict(EVERY),
    )
    if busy:
        response.headers["Refresh"] = str(REFRESH_SECONDS)
    return response


def _cursor(value: str) -> tuple[datetime, int] | None:
    """A keyset cursor "ISO-TIME_ID" from a link; nonsense reads as none (the first page)."""
    at, _, ident = value.rpartition("_")
    try:
        when = datetime.fromisoformat(at)
    except ValueError:
        return None
    if when.tzinfo is None or not ident.isdigit() or int(ident) >= MAX_ID:
        return None
    return when, int(ident)


def cursor_of(attempt: DeliveryAttempt) -> str:
    return f"{attempt.attempted_at.isoformat()}_{attempt.id}"


async def mailing_attempts(request: Request) -> Response:
    """The attempts log: status filter, 50 a page, "older"/"newer" links carry a keyset cursor
    (a bare ?page=N, from a typed or old link, still works by offset)."""
    user = await require_user(request)
    mailing_id = _mailing_id(request)
    status = request.query_params.get("status", "").strip() or None
    page, limit, offset = page_args(request, LOG_PAGE)
    older = _cursor(request.query_params.get("before", ""))
    newer = None if older else _cursor(request.query_params.get("after", ""))

    def work(session: Session) -> dict[str, Any]:
        mailing = svc.get_mailing(session=session, actor=user, mailing_id=mailing_id)
        total = reports.count_attempts(
            session=session, actor=user, mailing_id=mailing_id, status=status, cap=LOG_COUNT_CAP
        )
        rows = reports.list_attempts(
            session=session,
            actor=user,
            mailing_id=mailing_id,
            status=status,
            limit=limit + 1,  # one more tells whether the next page exists
            offset=offset,
            older_than=older,
            newer_than=newer,
        )
        return {"mailing": mailing, "total": total, "attempts": list(rows)}

    data = await db(request, work, readonly=True)
    rows, extra = data["attempts"], len(data["attempts"]) > LOG_PAGE
    if newer is not None:
        # Fetched upwards from the cursor: the extra row is the newest one, in front.
        rows = rows[1:] if extra else rows
        has_older, at_newest = True, not extra
    else:
        rows = rows[:LOG_PAGE]
        has_older, at_newest = extra, page == 1
    if at_newest:
        page = 1  # back at the newest rows: the page count restarts there
    data["attempts"] = rows
    capped = data["total"] > LOG_COUNT_CAP
    pages = None if capped else max(1, math.ceil(data["total"] / LOG_PAGE))
    params = {"status": status} if status else {}
    links = {
        "newest": {**params} if page > 1 else None,
        "newer": {**params, "after": cursor_of(rows[0]), "page": page - 1}
        if rows and page > 1
        else None,
        "older": {**params, "before": cursor_of(rows[-1]), "page": page + 1}
        if rows and has_older
        else None,
    }
    return render(
        request,
        "user/mailing_attempts.html",
        **data,
        status=status or "",
        statuses=LOG_STATUSES,
        page=page,
        pages=pages,
        capped=capped,
        count_cap=LOG_COUNT_CAP,
        links=links,
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
