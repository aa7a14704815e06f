"""create_app(settings): the panel as a Starlette app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from mailctl.cache import Cache
from mailctl.config import Settings
from mailctl.db import make_engine, on_commit
from mailctl.errors import MailctlError
from mailctl.migrations import require_current
from mailctl.services.accounts import Links
from mailctl.web.api import ApiSplit, create_api
from mailctl.web.headers import SecurityHeaders
from mailctl.web.imports import ImportJobs
from mailctl.web.pages import make_templates, render
from mailctl.web.security import LoginRequired, login_redirect
from mailctl.web.state import PanelState, panel_of
from mailctl.web.worker import BackgroundSender

# Our stylesheet and the vendored Bootstrap CSS (static/vendor/bootstrap/SOURCE.txt says why
# and from where), served from the installed package: the panel works offline.
STATIC = Path(__file__).parent / "static"


class Panel(Starlette):
    """The panel's app: its security headers wrap the whole stack, so that even the 500
    page of Starlette's outermost error middleware carries them."""

    hsts = False
    api: ASGIApp | None = None  # /api/v1, reached before the session middleware

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        if self.api is not None:
            stack = ApiSplit(stack, self.api)
        return SecurityHeaders(stack, hsts=self.hsts)


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, MailctlError)
    return render(request, "error.html", status_code=exc.http_status, message=str(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return render(request, "error.html", status_code=exc.status_code, message=exc.detail)


async def _out_of_range(request: Request, exc: Exception) -> Response:
    # A number too big for the database in a path or form: nothing by that id exists.
    return render(request, "error.html", status_code=404, message="not found")


async def _login_required(request: Request, exc: Exception) -> Response:
    return login_redirect(request)


def create_app(settings: Settings) -> Starlette:
    from mailctl.web.views import routes

    engine = make_engine(settings)
    require_current(engine)
    cache = Cache(settings)
    on_commit(engine, cache.on_tables_changed)
    secret_key = settings.web_secret_key()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        panel_of(app).sender.shutdown()
        panel_of(app).imports.shutdown()
        cache.close()
        engine.dispose()

    app = Panel(
        routes=[
            *routes(),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        middleware=[
            Middleware(
                SessionMiddleware,
                secret_key=secret_key,
                session_cookie="mailctl_session",
                max_age=settings.web.session_max_age,
                same_site="lax",
                https_only=settings.web.secure_cookies,
            )
        ],
        exception_handlers={
            MailctlError: _domain_error,
            HTTPException: _http_error,
            LoginRequired: _login_required,
            OverflowError: _out_of_range,
        },
        lifespan=lifespan,
    )
    app.hsts = settings.web.secure_cookies
    app.state.panel = PanelState(
        settings=settings,
        engine=engine,
        cache=cache,
        templates=make_templates(),
        links=Links(
            base_url=settings.base_url(),
            secret=secret_key,
            max_age=settings.web.token_max_age,
        ),
        # Its threads start with the first pass it is given.
        sender=BackgroundSender(engine, settings),
        imports=ImportJobs(engine),
    )
    app.api = create_api(app.state.panel, settings)
    return app
