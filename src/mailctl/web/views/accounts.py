"""Accounts: register, verify, log in and out, reset and change the password.

Every rule of these flows is in services/accounts.py; a view reads the form, calls one flow,
and shows its answer (sending the email the flow decided on after the response).
"""

from __future__ import annotations

from starlette.background import BackgroundTask
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailctl.errors import (
    BadPassword,
    Forbidden,
    Invalid,
    MailctlError,
    Throttled,
    Unauthorized,
    Unverified,
)
from mailctl.models import User
from mailctl.services import accounts, apikeys, users
from mailctl.services.access import capabilities
from mailctl.web.pages import db, flash, redirect, render
from mailctl.web.security import checked_form, current_user, login, logout, require_user, safe_next
from mailctl.web.state import panel

SENT_TEXT = (
    "If {email} can receive it, an email is on its way with a link. The link works once and "
    "expires; check the spam folder if nothing arrives."
)


def field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _sent(request: Request, sent: accounts.Sent) -> Response:
    """The one answer of every form that may send an email, whatever it found."""
    response = render(
        request,
        "accounts/sent.html",
        title="Check your email",
        text=SENT_TEXT.format(email=sent.address),
    )
    if sent.notice is not None:
        response.background = BackgroundTask(
            accounts.send_notice, settings=panel(request).settings, notice=sent.notice
        )
    return response


# -- register and verify ----------------------------------------------------------------------


async def register_page(request: Request) -> Response:
    await current_user(request)
    if request.method == "GET":
        return render(request, "accounts/register.html", email="", full_name="", error=None)
    form = await checked_form(request)
    email, full_name = field(form, "email").strip(), field(form, "full_name")
    state = panel(request)
    try:
        sent = await db(
            request,
            lambda s: accounts.sign_up(
                session=s,
                links=state.links,
                counters=state.cache,
                email=email,
                full_name=full_name,
                password=field(form, "password"),
                confirm=field(form, "password_confirm"),
            ),
        )
    except Invalid as exc:
        return render(
            request,
            "accounts/register.html",
            status_code=400,
            email=email,
            full_name=full_name,
            error=str(exc),
        )
    return _sent(request, sent)


async def verify(request: Request) -> Response:
    await current_user(request)
    token, links = str(request.path_params["token"]), panel(request).links
    if request.method == "GET":
        user = await db(
            request,
            lambda s: accounts.verification_target(session=s, links=links, token=token),
            readonly=True,
        )
        return render(request, "accounts/verify.html", email=user.email)
    await checked_form(request)
    await db(request, lambda s: accounts.verify_email(session=s, links=links, token=token))
    flash(request, "Your email address is confirmed. You can log in now.")
    return redirect("/login")


async def resend(request: Request) -> Response:
    await current_user(request)
    if request.method == "GET":
        return render(request, "accounts/email_form.html", action="/verify/resend", mode="resend")
    form = await checked_form(request)
    state = panel(request)
    sent = await db(
        request,
        lambda s: accounts.resend_verification(
            session=s, links=state.links, counters=state.cache, email=field(form, "email")
        ),
        readonly=True,
    )
    return _sent(request, sent)


# -- log in and out --------------------------------------------------------------------------


def _landing(user: User, wanted: str) -> str:
    if wanted and safe_next(wanted) == wanted:
        return wanted
    # Where the actor's work is: their own mailings, everyone's, or the blog.
    caps = capabilities(user)
    if caps.can_edit_content:
        return "/dashboard"
    if caps.can_view_mailings:
        return "/mailings"
    if caps.can_edit_blog:
        return "/editor/posts"
    return "/"


async def login_page(request: Request) -> Response:
    await current_user(request)
    if request.method == "GET":
        return render(
            request,
            "accounts/login.html",
            email="",
            next=request.query_params.get("next", ""),
            error=None,
            unverified=False,
        )
    form = await checked_form(request)
    email, wanted = field(form, "email").strip(), field(form, "next")
    host = request.client.host if request.client else "?"

    def failed(exc: MailctlError, *, status: int | None = None) -> Response:
        return render(
            request,
            "accounts/login.html",
            status_code=status or exc.http_status,
            email=email,
            next=wanted,
            error=str(exc).capitalize() + ".",
            unverified=isinstance(exc, Unverified),
        )

    try:
        user = await db(
            request,
            lambda s: accounts.log_in(
                session=s,
                counters=panel(request).cache,
                email=email,
                password=field(form, "password"),
                host=host,
            ),
        )
    except Throttled as exc:
        response = failed(exc)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except Unauthorized as exc:
        return failed(exc, status=400)  # the form's answer, not a challenge to authenticate
    except Forbidden as exc:
        return failed(exc)
    login(request, user)
    return redirect(_landing(user, wanted))


async def logout_page(request: Request) -> Response:
    """A logout ends every session of the account, not only this browser's cookie (a copy of
    the cookie taken before would otherwise keep working)."""
    user = await current_user(request)
    await checked_form(request)
    if user is not None:
        await db(request, lambda s: accounts.end_sessions(session=s, actor=user))
    logout(request)
    flash(request, "You are logged out.")
    return redirect("/")


# -- passwords ---------------------------------------------------------------------------------


async def forgot(request: Request) -> Response:
    await current_user(request)
    if request.method == "GET":
        return render(request, "accounts/email_form.html", action="/password/forgot", mode="forgot")
    form = await checked_form(request)
    state = panel(request)
    sent = await db(
        request,
        lambda s: accounts.request_reset(
            session=s, links=state.links, counters=state.cache, email=field(form, "email")
        ),
        readonly=True,
    )
    return _sent(request, sent)


async def reset(request: Request) -> Response:
    await current_user(request)
    token, links = str(request.path_params["token"]), panel(request).links

    async def form_page(status: int = 200, error: str | None = None) -> Response:
        user = await db(
            request,
            lambda s: accounts.reset_target(session=s, links=links, token=token),
            readonly=True,
        )
        return render(
            request, "accounts/reset.html", status_code=status, email=user.email, error=error
        )

    if request.method == "GET":
        return await form_page()
    form = await checked_form(request)
    try:
        await db(
            request,
            lambda s: accounts.reset_password(
                session=s,
                links=links,
                token=token,
                new_password=field(form, "password"),
                confirm=field(form, "password_confirm"),
            ),
        )
    except BadPassword as exc:
        return await form_page(400, str(exc))
    logout(request)
    flash(request, "Your password is changed. Log in with the new one.")
    return redirect("/login")


# -- the account page --------------------------------------------------------------------------


async def account_page(
    request: Request,
    user: User,
    *,
    status: int = 200,
    error: str | None = None,
    new_key: str | None = None,
) -> Response:
    """The account page, with the user's API keys (and a key just made, shown this once)."""
    keys = await db(
        request, lambda s: list(apikeys.list_keys(session=s, actor=user)), readonly=True
    )
    return render(
        request,
        "accounts/account.html",
        status_code=status,
        account=user,
        error=error,
        keys=keys,
        new_key=new_key,
        key_prefix=apikeys.KEY_PREFIX,
    )


async def account(request: Request) -> Response:
    user = await require_user(request)
    return await account_page(request, user)


async def change_password(request: Request) -> Response:
    user = await require_user(request)
    form = await checked_form(request)
    try:
        updated = await db(
            request,
            lambda s: accounts.change_password(
                session=s,
                actor=user,
                old_password=field(form, "old_password"),
                new_password=field(form, "password"),
                confirm=field(form, "password_confirm"),
            ),
        )
    except Invalid as exc:
        return await account_page(request, user, status=400, error=str(exc))
    # The version went up, which ends every other session; this one carries on.
    login(request, updated)
    flash(request, "Your password is changed. Other sessions are logged out.")
    return redirect("/account")


async def change_profile(request: Request) -> Response:
    user = await require_user(request)
    form = await checked_form(request)
    try:
        await db(
            request,
            lambda s: users.edit_user(
                session=s, actor=user, user_id=user.id or 0, full_name=field(form, "full_name")
            ),
        )
    except Invalid as exc:
        return await account_page(request, user, status=400, error=str(exc))
    flash(request, "Your name is saved.")
    return redirect("/account")


_BOTH = ["GET", "POST"]
routes: list[BaseRoute] = [
    Route("/register", register_page, methods=_BOTH, name="register"),
    Route("/verify/resend", resend, methods=_BOTH, name="verify_resend"),
    Route("/verify/{token}", verify, methods=_BOTH, name="verify"),
    Route("/login", login_page, methods=_BOTH, name="login"),
    Route("/logout", logout_page, methods=["POST"], name="logout"),
    Route("/password/forgot", forgot, methods=_BOTH, name="password_forgot"),
    Route("/password/reset/{token}", reset, methods=_BOTH, name="password_reset"),
    Route("/account", account, name="account"),
    Route("/account/password", change_password, methods=["POST"], name="account_password"),
    Route("/account/profile", change_profile, methods=["POST"], name="account_profile"),
]
