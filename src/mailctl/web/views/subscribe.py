"""Public pages: a sign-up form, its confirmation link, and the unsubscribe link's tag
preferences. Every rule is in services/signups.py and services/preferences.py."""

from __future__ import annotations

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailctl.errors import Invalid
from mailctl.services import preferences as prefs
from mailctl.services import signups
from mailctl.web.pages import db, redirect, render
from mailctl.web.security import checked_form, current_user
from mailctl.web.state import panel

SENT = (
    "If {email} can receive it, an email is on its way with a link to confirm. Nothing "
    "happens until you press the button on that link's page."
)
HONEYPOT = "website"  # a field hidden from people (CSS), filled in by bots


def _ip(request: Request) -> str:
    return request.client.host if request.client else ""


async def subscribe(request: Request) -> Response:
    await current_user(request)
    public_id = str(request.path_params["public_id"])
    found = await db(
        request, lambda s: signups.public_form(session=s, public_id=public_id), readonly=True
    )
    if request.method == "GET":
        # The snippet on a website opens this page with ?email=... filled in.
        email = request.query_params.get("email", "")[:254]
        return render(
            request, "public/subscribe.html", form=found, email=email, full_name="", error=None
        )
    form = await checked_form(request)
    email, name = str(form.get("email") or ""), str(form.get("full_name") or "")
    state = panel(request)
    try:
        asked = await db(
            request,
            lambda s: signups.request_signup(
                session=s,
                links=state.links,
                counters=state.cache,
                public_id=public_id,
                email=email,
                full_name=name,
                ip=_ip(request),
                honeypot=str(form.get(HONEYPOT) or ""),
            ),
            readonly=True,
        )
    except Invalid as exc:
        return render(
            request,
            "public/subscribe.html",
            status_code=400,
            form=found,
            email=email,
            full_name=name,
            error=str(exc),
        )
    response = render(
        request,
        "public/subscribe_done.html",
        title="Check your email",
        text=SENT.format(email=asked.address),
    )
    if asked.email is not None:
        response.background = BackgroundTask(
            signups.send_confirmation, settings=state.settings, email=asked.email
        )
    return response


async def confirm(request: Request) -> Response:
    await current_user(request)
    token, links = str(request.path_params["token"]), panel(request).links
    if request.method == "GET":
        pending = await db(
            request,
            lambda s: signups.confirmation_target(session=s, links=links, token=token),
            readonly=True,
        )
        return render(request, "public/subscribe_confirm.html", pending=pending)
    await checked_form(request)
    _, target = await db(
        request, lambda s: signups.confirm_signup(session=s, links=links, token=token)
    )
    if target:
        return redirect(target)
    return render(
        request,
        "public/subscribe_done.html",
        title="You are subscribed",
        text="Thank you: your subscription is confirmed.",
    )


async def preferences(request: Request) -> Response:
    """POST from the preference page (a CSRF-checked form; the one-click unsubscribe of
    everything stays on /unsubscribe/<token>)."""
    await current_user(request)
    token, secret = str(request.path_params["token"]), panel(request).links.secret
    form = await checked_form(request)
    keep = {int(v) for v in form.getlist("keep") if isinstance(v, str) and v.isdigit()}
    done = await db(
        request, lambda s: prefs.set_preferences(session=s, token=token, secret=secret, keep=keep)
    )
    return render(
        request,
        "public/unsubscribe.html",
        done=False,
        saved=True,
        email=done.client.email if done.client else None,
        public_tags=done.public_tags,
        token=token,
    )


routes: list[BaseRoute] = [
    Route("/subscribe/confirm/{token}", confirm, methods=["GET", "POST"], name="subscribe_confirm"),
    Route("/subscribe/{public_id}", subscribe, methods=["GET", "POST"], name="subscribe"),
    Route("/unsubscribe/{token}/preferences", preferences, methods=["POST"], name="preferences"),
]
