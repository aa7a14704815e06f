"""Mailings: the dashboard, list, delete, enable/disable, send now, detail, log (the add
and edit forms are in mailing_forms.py)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailctl.errors import Invalid
from mailctl.models import Mailing
from mailctl.models.delivery import PENDING, SENDING
from mailctl.schedule import Clock
from mailctl.services import bounce_reports, delivery, mailing_rows, reports
from mailctl.services import mailings as svc
from mailctl.services.access import capabilities
from mailctl.services.reports import LOG_STATUSES
from mailctl.web.chart import localise, outcome_svg
from mailctl.web.downloads import csv_download
from mailctl.web.pages import db, flash, int_or_404, page_args, redirect, render
from mailctl.web.security import checked_form, require_user, safe_next
from mailctl.web.state import panel

PER_PAGE = 25
STATUSES = ("created", "started", "finished", "disabled")
EVERY = (("once", "Once"), ("day", "Daily"), ("week", "Weekly"), ("month", "Monthly"))
REFRESH_SECONDS = 3


def mailing_id_of(request: Request) -> int:
    return int_or_404(request.path_params["mailing_id"])


# --- dashboard -------------------------------------------------------------------------------


async def dashboard(request: Request) -> Response:
    user = await require_user(request)
    caps = capabilities(user)

    def work(session: Session) -> dict[str, Any]:
        stats = svc.stats(session=session, actor=user)
        recent: list[Mailing] = []
        if caps.can_view_mailings:
            recent = list(svc.recent_mailings(session=session, actor=user, count=5))
        steps = None
        if caps.can_edit_content:  # the guide to a first mailing
            steps = svc.first_steps(session=session, actor=user)
        return {"stats": stats, "recent": recent, "steps": steps}

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


# --- actions ---------------------------------------------------------------------------------


async def mailing_delete(request: Request) -> Response:
    user = await require_user(request)
    mailing_id = mailing_id_of(request)
    await checked_form(request)
    await db(request, lambda s: svc.delete_mailing(session=s, actor=user, mailing_id=mailing_id))
    flash(request, f"Deleted mailing {mailing_id} with its log.")
    return redirect("/mailings")


async def _set_enabled(request: Request, *, enabled: bool) -> Response:
    user = await require_user(request)
    mailing_id = mailing_id_of(request)
    form = await checked_form(request)
    mailing = await db(
        request,
        lambda s: svc.set_enabled(session=s, actor=user, mailing_id=mailing_id, enabled=enabled),
    )
    if enabled and panel(request).sender.submit_if_due(mailing):
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
    mailing_id = mailing_id_of(request)
    await checked_form(request)
    try:
        await db(
            request,
            lambda s: delivery.request_send(
                session=s,
                actor=user,
                mailing_id=mailing_id,
                clock=Clock.from_settings(panel(request).settings),
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
    mailing_id = mailing_id_of(request)
    tz = panel(request).settings.scheduler.timezone

    def work(session: Session) -> dict[str, Any]:
        row = mailing_rows.get_mailing_row(session=session, actor=user, mailing_id=mailing_id)
        report = reports.mailing_report(session=session, actor=user, mailing_id=mailing_id)
        series = reports.outcome_series(session=session, actor=user, mailing_id=mailing_id)
        series = bounce_reports.with_bounces(
            session=session, actor=user, mailing_id=mailing_id, series=series
        )
        runs = reports.list_runs(session=session, actor=user, mailing_id=mailing_id)
        return {
            "mailing": row.mailing,
            "report": report,
            "series": series,
            "subject": row.subject,
            "owner": row.owner_email or "",
            "client_count": row.client_count,
            "runs": runs,
            "bounces": bounce_reports.mailing_bounces(
                session=session, actor=user, mailing_id=mailing_id
            ),
            "run_bounces": bounce_reports.run_bounces(
                session=session,
                actor=user,
                mailing_id=mailing_id,
                run_ids=[r.run.id for r in runs if r.run.id is not None],
            ),
        }

    data = await db(request, work, readonly=True)
    mailing, report = data["mailing"], data["report"]
    # Reload while a run is being sent or about to start; deferred rows wait minutes for their
    # retry, so they do not keep the page reloading.
    busy = report.counts[PENDING] + report.counts[SENDING] > 0 or delivery.is_due(mailing)
    response = render(
        request,
        "user/mailing_detail.html",
        **data,
        chart=outcome_svg(localise(data["series"], tz)),
        chart_compact=outcome_svg(localise(data["series"], tz), compact=True),
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
    mailing_id = mailing_id_of(request)
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
    mailing_id = mailing_id_of(request)
    return await csv_download(
        request,
        check=lambda s: reports.count_attempts(session=s, actor=user, mailing_id=mailing_id, cap=0),
        pieces=lambda s: reports.iter_attempts_csv(session=s, actor=user, mailing_id=mailing_id),
        filename=f"mailing-{mailing_id}-log.csv",
    )


routes: list[BaseRoute] = [
    Route("/dashboard", dashboard, methods=["GET"]),
    Route("/mailings", mailing_list, methods=["GET"]),
    Route("/mailings/{mailing_id}", mailing_detail, methods=["GET"]),
    Route("/mailings/{mailing_id}/delete", mailing_delete, methods=["POST"]),
    Route("/mailings/{mailing_id}/enable", mailing_enable, methods=["POST"]),
    Route("/mailings/{mailing_id}/disable", mailing_disable, methods=["POST"]),
    Route("/mailings/{mailing_id}/send", mailing_send, methods=["POST"]),
    Route("/mailings/{mailing_id}/attempts", mailing_attempts, methods=["GET"]),
    Route("/mailings/{mailing_id}/attempts.csv", mailing_attempts_csv, methods=["GET"]),
]
