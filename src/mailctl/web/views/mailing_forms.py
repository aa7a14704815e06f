"""Mailings: the add and edit forms."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailctl.errors import Invalid, NotFound
from mailctl.models import Mailing
from mailctl.schedule import Clock
from mailctl.services import mailings as svc
from mailctl.timeutil import parse_when, to_local
from mailctl.web.pages import db, flash, redirect, render
from mailctl.web.security import checked_form, require_user
from mailctl.web.state import panel
from mailctl.web.views.mailings import EVERY, mailing_id_of


def _local_input(value: datetime | None, tz: str) -> str:
    """The value of an <input type="datetime-local"> in the configured zone."""
    return to_local(value, tz).strftime("%Y-%m-%dT%H:%M") if value is not None else ""


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
    settings = panel(request).settings
    tz = settings.scheduler.timezone
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
                clock=Clock.from_settings(settings),
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
    if panel(request).sender.submit_if_due(mailing):
        flash(request, f"Created mailing {mailing.id}; sending has started.")
    else:
        flash(request, f"Created mailing {mailing.id}; it starts by itself when its time comes.")
    return redirect(f"/mailings/{mailing.id}")


async def mailing_edit(request: Request) -> Response:
    user = await require_user(request)
    mailing_id = mailing_id_of(request)
    settings = panel(request).settings
    tz = settings.scheduler.timezone

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
                client_ids=None if values.all_clients else values.client_ids,
                all_clients=values.all_clients,
                clock=Clock.from_settings(settings),
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
    if panel(request).sender.submit_if_due(updated):
        flash(request, "Saved the mailing; its run is due, so sending has started.")
    else:
        flash(request, "Saved the mailing.")
    return redirect(f"/mailings/{mailing_id}")


# Listed before the mailings area: "/mailings/new" must not be read as a mailing id.
routes: list[BaseRoute] = [
    Route("/mailings/new", mailing_new, methods=["GET", "POST"]),
    Route("/mailings/{mailing_id}/edit", mailing_edit, methods=["GET", "POST"]),
]
