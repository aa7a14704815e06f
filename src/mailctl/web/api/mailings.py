"""/api/v1/mailings: schedule, change, pause, send now; their runs, attempts and report."""

from __future__ import annotations

from mailctl.models import Mailing
from mailctl.schedule import Clock
from mailctl.services import delivery, mailing_rows, reports
from mailctl.services import mailings as svc
from mailctl.web.api import schemas as s
from mailctl.web.api.convert import mailing_out, when
from mailctl.web.api.framework import Call, Operation


def _clock(call: Call) -> Clock:
    return Clock.from_settings(call.state.settings)


def _start_if_due(call: Call, mailing: Mailing) -> None:
    """The start rule: a mailing due once this call commits starts sending at once."""
    sender = call.state.sender
    call.after.append(lambda: sender.submit_if_due(mailing))


def list_mailings(call: Call) -> list[s.MailingOut]:
    q: s.MailingQuery = call.query
    rows = mailing_rows.list_mailing_rows(
        session=call.session, actor=call.user, status=q.status, limit=q.limit, offset=q.offset
    )
    return [mailing_out(call.session, r.mailing) for r in rows]


def get_mailing(call: Call) -> s.MailingOut:
    mailing = svc.get_mailing(
        session=call.session, actor=call.user, mailing_id=call.ids["mailing_id"]
    )
    return mailing_out(call.session, mailing)


def create_mailing(call: Call) -> s.MailingOut:
    body: s.MailingIn = call.body
    start = when(call, body.start or "now", "start")
    end = when(call, body.end, "end") if body.end else None
    mailing = svc.add_mailing(
        session=call.session,
        actor=call.user,
        message_id=body.message_id,
        start=start,
        every=body.every,
        end=end,
        client_ids=body.client_ids,
        all_clients=body.all_clients,
        tags=body.tags,
        clock=_clock(call),
    )
    _start_if_due(call, mailing)
    return mailing_out(call.session, mailing)


def update_mailing(call: Call) -> s.MailingOut:
    body: s.MailingPatch = call.body
    start = when(call, body.start, "start") if body.start else None
    end = when(call, body.end, "end") if body.end else None
    mailing = svc.edit_mailing(
        session=call.session,
        actor=call.user,
        mailing_id=call.ids["mailing_id"],
        message_id=body.message_id,
        start=start,
        end=end,
        clear_end=body.end == "",
        every=body.every,
        client_ids=body.client_ids,
        all_clients=body.all_clients,
        tags=body.tags,
        clock=_clock(call),
    )
    _start_if_due(call, mailing)
    return mailing_out(call.session, mailing)


def delete_mailing(call: Call) -> None:
    svc.delete_mailing(session=call.session, actor=call.user, mailing_id=call.ids["mailing_id"])


def _set_enabled(call: Call, enabled: bool) -> s.MailingOut:
    mailing = svc.set_enabled(
        session=call.session, actor=call.user, mailing_id=call.ids["mailing_id"], enabled=enabled
    )
    if enabled:
        _start_if_due(call, mailing)
    call.session.flush()
    return mailing_out(call.session, mailing)


def enable_mailing(call: Call) -> s.MailingOut:
    return _set_enabled(call, True)


def disable_mailing(call: Call) -> s.MailingOut:
    return _set_enabled(call, False)


def send_mailing(call: Call) -> s.SendOut:
    """Send now: the next run is made due in this transaction; the background sender takes
    the mailing once it is committed (as the panel's button does)."""
    mailing_id = call.ids["mailing_id"]
    delivery.request_send(
        session=call.session, actor=call.user, mailing_id=mailing_id, clock=_clock(call)
    )
    sender = call.state.sender
    call.after.append(lambda: sender.submit(mailing_id))
    return s.SendOut(mailing_id=mailing_id, queued=True)


def list_runs(call: Call) -> list[s.RunOut]:
    rows = reports.list_runs(
        session=call.session, actor=call.user, mailing_id=call.ids["mailing_id"]
    )
    return [
        s.RunOut(
            id=r.run.id or 0,
            scheduled_at=r.run.scheduled_at,
            started_at=r.run.started_at,
            finished_at=r.run.finished_at,
            recipients=r.run.recipients,
            counts=r.counts,
        )
        for r in rows
    ]


def list_attempts(call: Call) -> s.AttemptPage:
    q: s.AttemptQuery = call.query
    page = reports.attempts_page(
        session=call.session,
        actor=call.user,
        mailing_id=call.ids["mailing_id"],
        status=q.status,
        before=q.before or "",
        after=q.after or "",
    )
    return s.AttemptPage(
        items=[
            s.AttemptOut(
                id=a.id or 0,
                run_id=a.run_id,
                email=a.email,
                attempted_at=a.attempted_at,
                status=a.status,
                smtp_code=a.smtp_code,
                response=a.response,
            )
            for a in page.attempts
        ],
        total=page.total,
        total_cap=page.count_cap,
        older=page.older["before"] if page.older else None,
        newer=page.newer["after"] if page.newer else None,
    )


def get_report(call: Call) -> s.ReportOut:
    r = reports.mailing_report(
        session=call.session, actor=call.user, mailing_id=call.ids["mailing_id"]
    )
    return s.ReportOut(
        mailing_id=r.mailing_id,
        counts=r.counts,
        attempts=r.attempts,
        runs=r.runs,
        success_rate=r.success_rate,
        last_attempt_at=r.last_attempt_at,
        last_error=r.last_error,
        last_error_at=r.last_error_at,
        quota_server=r.quota_server,
        quota_until=r.quota_until,
    )


T, R = "mailings", "reports"
ONE = "/mailings/{mailing_id}"
OPERATIONS = [
    Operation(
        "GET",
        "/mailings",
        list_mailings,
        "List mailings",
        T,
        query=s.MailingQuery,
        response=list[s.MailingOut],
        description="Your own; a manager's or an admin's: everyone's.",
    ),
    Operation(
        "POST",
        "/mailings",
        create_mailing,
        "Schedule a mailing",
        T,
        body=s.MailingIn,
        response=s.MailingOut,
        status=201,
        description="To `client_ids`, `tags` or `all_clients`. One whose start has come "
        "(the default, `now`) starts sending at once.",
    ),
    Operation("GET", ONE, get_mailing, "Show a mailing", T, response=s.MailingOut),
    Operation(
        "PATCH",
        ONE,
        update_mailing,
        "Change a mailing",
        T,
        body=s.MailingPatch,
        response=s.MailingOut,
    ),
    Operation("DELETE", ONE, delete_mailing, "Delete a mailing with its log", T),
    Operation(
        "POST", f"{ONE}/enable", enable_mailing, "Enable a mailing", T, response=s.MailingOut
    ),
    Operation(
        "POST",
        f"{ONE}/disable",
        disable_mailing,
        "Disable (pause) a mailing",
        T,
        response=s.MailingOut,
    ),
    Operation(
        "POST",
        f"{ONE}/send",
        send_mailing,
        "Send the next run now",
        T,
        response=s.SendOut,
        status=202,
    ),
    Operation(
        "GET",
        f"{ONE}/runs",
        list_runs,
        "The latest runs with their counts",
        R,
        response=list[s.RunOut],
    ),
    Operation(
        "GET",
        f"{ONE}/attempts",
        list_attempts,
        "The attempts log, newest first",
        R,
        query=s.AttemptQuery,
        response=s.AttemptPage,
        description="50 a page; follow `older` (as ?before=) and `newer` (as ?after=).",
    ),
    Operation(
        "GET",
        f"{ONE}/report",
        get_report,
        "Counts per state and the success rate",
        R,
        response=s.ReportOut,
    ),
]
