"""What every view uses: templates, database work off the event loop, flashes, redirects."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import jinja2
from markupsafe import Markup, escape
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse
from starlette.templating import Jinja2Templates

from mailctl.db import session_scope
from mailctl.errors import NotFound
from mailctl.services.access import capabilities
from mailctl.services.validation import ID_MAX
from mailctl.timeutil import fmt
from mailctl.web.security import csrf_token
from mailctl.web.state import panel

T = TypeVar("T")
TEMPLATES = Path(__file__).parent / "templates"


_BREAK_AFTER = re.compile(r"([./_+-])")


# Shorter addresses fit a phone's line in every layout the panel uses.
_FITS_A_LINE = 26


def breakable(text: object) -> Markup:
    """A long address that may wrap before its @ and after dots or hyphens, not in mid-word
    (a phone's narrow column otherwise cuts `konstantin` into `konstan` and `tin`)."""
    escaped = str(escape(str(text)))
    if len(str(text)) > _FITS_A_LINE:
        escaped = _BREAK_AFTER.sub(r"\1<wbr>", escaped).replace("@", "<wbr>@")
    return Markup(escaped)  # noqa: S704 - escaped above; only <wbr> was added


def make_templates() -> Jinja2Templates:
    # Autoescape every template, whatever its extension (Starlette's default skips some).
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
    )
    env.filters["breakable"] = breakable
    return Jinja2Templates(env=env)


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """The page; every template gets `user` and `caps` (what that user may do: pages show
    buttons from it and never compare role names)."""
    state = panel(request)
    tz = state.settings.scheduler.timezone
    context.setdefault("user", request.scope.get("user"))
    context.setdefault("caps", capabilities(context["user"]))
    base = {
        "request": request,
        "csrf_token": csrf_token(request),
        "flashes": request.session.pop("flashes", []),
        "when": lambda value: fmt(value, tz),
        "tz": tz,
    }
    return state.templates.TemplateResponse(
        request, template, {**base, **context}, status_code=status_code
    )


def flash(request: Request, message: str, kind: str = "success") -> None:
    request.session.setdefault("flashes", [])
    request.session["flashes"] = [*request.session["flashes"], [kind, message]]


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


async def db(request: Request, work: Callable[[Session], T], *, readonly: bool = False) -> T:
    """Run `work(session)` in one transaction on a worker thread, off the event loop."""

    def run() -> T:
        with session_scope(panel(request).engine, readonly=readonly) as session:
            return work(session)

    return await run_in_threadpool(run)


def page_args(request: Request, per_page: int = 25) -> tuple[int, int, int]:
    """(page, limit, offset) from ?page=N, tolerant of nonsense."""
    try:
        page = max(1, int(request.query_params.get("page", "1")))
    except ValueError:
        page = 1
    return page, per_page, (page - 1) * per_page


def int_or_404(value: Any) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise NotFound("not found") from None
    if not 0 < number < ID_MAX:  # the database cannot even look up a bigger number
        raise NotFound("not found")
    return number
