"""Accounts: register, verify, log in and out, reset and change the password."""

from __future__ import annotations

import hashlib
from typing import Any

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailctl.errors import Forbidden, Invalid, MailctlError, Unauthorized
from mailctl.models import User
from mailctl.sending import notices
from mailctl.services import users
from mailctl.services.validation import clean_email, clean_text
from mailctl.web.pages import db, flash, redirect, render
from mailctl.web.security import checked_form, current_user, login, logout, require_user, safe_next

LOGIN_FAILURES = 5
THROTTLE_SECONDS = 15 * 60
MAILS_PER_WINDOW = 3  # verification / reset emails to one address per window
LANDING = {
    "user": "/dashboard",
    "admin": "/dashboard",
    "manager": "/mailings",
    "editor": "/editor/posts",
}
SENT_TEXT = (
    "If {email} can receive it, an email is on its way with a link. The link works once and "
    "expires; check the spam folder if nothing arrives."
)


def field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _secret(request: Request) -> str:
    # Read once per app (create_app keeps it), not from the data dir on every link.
    return str(request.app.state.secret_key)


def _max_age(request: Request) -> int:
    return int(request.app.state.settings.web.token_max_age)


def _link(request: Request, path: str) -> str:
    # The configured address, never the Host header an attacker could set.
    return str(request.app.state.settings.base_url()) + path


def _password_problem(password: str, confirm: str) -> str | None:
    if len(password) < users.PASSWORD_MIN:
        return f"the password must have at least {users.PASSWORD_MIN} characters"
    if len(password) > users.PASSWORD_MAX:
        return f"the password must have at most {users.PASSWORD_MAX} characters"
    if password != confirm:
        return "the two passwords differ"
    return None


# -- throttling (counters in the shared disk cache, so every worker sees them) ---------------


async def _bump(request: Request, key: str) -> int:
    raw = request.app.state.cache.raw()

    def work() -> int:
        raw.add(key, 0, expire=THROTTLE_SECONDS)  # starts the window; incr keeps its expiry
        return int(raw.incr(key))

    return await run_in_threadpool(work)


async def _count(request: Request, key: str) -> int:
    return int(await run_in_threadpool(request.app.state.cache.raw().get, key, 0) or 0)


def _login_key(email: str, request: Request) -> str:
    host = request.client.host if request.client else "?"
    return (
        "throttle:login:" + hashlib.sha256(f"{email.strip().lower()}|{host}".encode()).hexdigest()
    )


async def _may_mail(request: Request, purpose: str, email: str) -> bool:
    """At most a few emails per address per window: the forms must not flood an inbox.

    Called for every address asked about, whether or not it has an account: a counter that
    only moved for real accounts would tell them apart (by its timing, or its cache entry)."""
    digest = hashlib.sha256(email.encode()).hexdigest()
    return await _bump(request, f"throttle:mail:{purpose}:{digest}") <= MAILS_PER_WINDOW


# -- register and verify ----------------------------------------------------------------------


def _verify_link(request: Request, user: User) -> str:
    token = users.verification_token(user=user, secret=_secret(request))
    return _link(request, f"/verify/{token}")


async def register_page(request: Request) -> Response:
    await current_user(request)
    if request.method == "GET":
        return render(request, "accounts/register.html", email="", full_name="", error=None)
    form = await checked_form(request)
    email, full_name = field(form, "email").strip(), field(form, "full_name")
    password, confirm = field(form, "password"), field(form, "password_confirm")
    # Every check that does not need the database comes first, so that the answer to a bad
    # form never depends on whether the address already has an account.
    try:
        address = clean_email(email).lower()
        name = clean_text(full_name, field="name", max_len=200, single_line=True)
        problem = _password_problem(password, confirm)
        if problem:
            raise Invalid(problem)
    except MailctlError as exc:
        return render(
            request,
            "accounts/register.html",
            status_code=400,
            email=email,
            full_name=full_name,
            error=str(exc),
        )

    user, created = await db(
        request,
        lambda s: users.sign_up(session=s, email=address, password=password, full_name=name),
    )
    settings = request.app.state.settings
    task: BackgroundTask | None
    if created or (not user.is_verified and user.is_active):
        # A new account, or one whose first link was lost: (another) verification link.
        task = BackgroundTask(
            notices.send_verification,
            settings=settings,
            to=user.email,
            link=_verify_link(request, user),
        )
    else:
        task = BackgroundTask(
            notices.send_already_registered,
            settings=settings,
            to=user.email,
            login_url=_link(request, "/login"),
            reset_url=_link(request, "/password/forgot"),
        )
    if not await _may_mail(request, "register", address):
        task = None
    response = render(
        request,
        "accounts/sent.html",
        title="Check your email",
        text=SENT_TEXT.format(email=address),
    )
    response.background = task
    return response


def _token_args(request: Request) -> dict[str, Any]:
    return {
        "token": str(request.path_params["token"]),
        "secret": _secret(request),
        "max_age": _max_age(request),
    }


async def verify(request: Request) -> Response:
    await current_user(request)
    args = _token_args(request)
    if request.method == "GET":
        user = await db(
            request, lambda s: users.verification_target(session=s, **args), readonly=True
        )
        return render(request, "accounts/verify.html", email=user.email)
    await checked_form(request)
    await db(request, lambda s: users.verify_email(session=s, **args))
    flash(request, "Your email address is confirmed. You can log in now.")
    return redirect("/login")


async def resend(request: Request) -> Response:
    await current_user(request)
    if request.method == "GET":
        return render(request, "accounts/email_form.html", action="/verify/resend", mode="resend")
    form = await checked_form(request)
    address = field(form, "email").strip().lower()
    user = await db(request, lambda s: users.find_by_email(session=s, email=address), readonly=True)
    allowed = await _may_mail(request, "verify", address)
    response = render(
        request,
        "accounts/sent.html",
        title="Check your email",
        text=SENT_TEXT.format(email=address),
    )
    if allowed and user is not None and user.is_active and not user.is_verified:
        response.background = BackgroundTask(
            notices.send_verification,
            settings=request.app.state.settings,
            to=user.email,
            link=_verify_link(request, user),
        )
    return response


# -- log in and out --------------------------------------------------------------------------


def _landing(user: User, wanted: str) -> str:
    if wanted and safe_next(wanted) == wanted:
        return wanted
    return LANDING.get(user.role, "/")


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
    email, password, wanted = (
        field(form, "email").strip(),
        field(form, "password"),
        field(form, "next"),
    )
    key = _login_key(email, request)

    def failed(message: str, status: int, *, unverified: bool = False) -> Response:
        return render(
            request,
            "accounts/login.html",
            status_code=status,
            email=email,
            next=wanted,
            error=message,
            unverified=unverified,
        )

    if await _count(request, key) >= LOGIN_FAILURES:
        response = failed("Too many failed attempts. Wait 15 minutes and try again.", 429)
        response.headers["Retry-After"] = str(THROTTLE_SECONDS)
        return response
    try:
        user = await db(
            request, lambda s: users.authenticate(session=s, email=email, password=password)
        )
    except Unauthorized:
        await _bump(request, key)
        return failed("Wrong email or password.", 400)
    except Forbidden as exc:
        # Only after the right password: these tell nothing to someone guessing.
        unverified = "verify" in str(exc)
        return failed(str(exc).capitalize() + ".", 403, unverified=unverified)
    await run_in_threadpool(request.app.state.cache.raw().delete, key)
    login(request, user)
    return redirect(_landing(user, wanted))


async def logout_page(request: Request) -> Response:
    """A logout ends every session of the account, not only this browser's cookie (a copy of
    the cookie taken before would otherwise keep working)."""
    user = await current_user(request)
    await checked_form(request)
    if user is not None:
        await db(request, lambda s: users.end_sessions(session=s, actor=user))
    logout(request)
    flash(request, "You are logged out.")
    return redirect("/")


# -- passwords ---------------------------------------------------------------------------------


async def forgot(request: Request) -> Response:
    await current_user(request)
    if request.method == "GET":
        return render(request, "accounts/email_form.html", action="/password/forgot", mode="forgot")
    form = await checked_form(request)
    address = field(form, "email").strip().lower()
    user = await db(request, lambda s: users.find_by_email(session=s, email=address), readonly=True)
    allowed = await _may_mail(request, "reset", address)
    response = render(
        request,
        "accounts/sent.html",
        title="Check your email",
        text=SENT_TEXT.format(email=address),
    )
    if allowed and user is not None and user.is_active:
        token = users.reset_token(user=user, secret=_secret(request))
        response.background = BackgroundTask(
            notices.send_reset,
            settings=request.app.state.settings,
            to=user.email,
            link=_link(request, f"/password/reset/{token}"),
        )
    return response


async def reset(request: Request) -> Response:
    await current_user(request)
    args = _token_args(request)
    if request.method == "GET":
        user = await db(request, lambda s: users.reset_target(session=s, **args), readonly=True)
        return render(request, "accounts/reset.html", email=user.email, error=None)
    form = await checked_form(request)
    password, confirm = field(form, "password"), field(form, "password_confirm")
    problem = _password_problem(password, confirm)
    if problem:
        user = await db(request, lambda s: users.reset_target(session=s, **args), readonly=True)
        return render(
            request, "accounts/reset.html", status_code=400, email=user.email, error=problem
        )
    await db(
        request,
        lambda s: users.reset_password_with_token(session=s, new_password=password, **args),
    )
    logout(request)
    flash(request, "Your password is changed. Log in with the new one.")
    return redirect("/login")


# -- the account page --------------------------------------------------------------------------


def _account(
    request: Request, user: User, *, status: int = 200, error: str | None = None
) -> Response:
    return render(request, "accounts/account.html", status_code=status, account=user, error=error)


async def account(request: Request) -> Response:
    user = await require_user(request)
    return _account(request, user)


async def change_password(request: Request) -> Response:
    user = await require_user(request)
    form = await checked_form(request)
    old, new, confirm = (field(form, n) for n in ("old_password", "password", "password_confirm"))
    problem = _password_problem(new, confirm)
    if problem:
        return _account(request, user, status=400, error=problem)
    try:
        updated = await db(
            request,
            lambda s: users.set_password(
                session=s, actor=user, user_id=user.id or 0, new_password=new, old_password=old
            ),
        )
    except Invalid as exc:
        return _account(request, user, status=400, error=str(exc))
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
        return _account(request, user, status=400, error=str(exc))
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
