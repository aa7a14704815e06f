"""What the panel keeps for its lifetime, typed: built once by create_app, read by `panel()`."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.templating import Jinja2Templates

from mailctl.cache import Cache
from mailctl.config import Settings
from mailctl.services.accounts import Links
from mailctl.web.imports import ImportJobs
from mailctl.web.worker import BackgroundSender


@dataclass(frozen=True)
class PanelState:
    settings: Settings
    engine: Engine
    cache: Cache  # the page cache, and the counters that throttle log-ins and account emails
    templates: Jinja2Templates
    links: Links  # emailed links: the configured address, and the secret read once per app
    sender: BackgroundSender  # "send now" and due new mailings, off the request
    imports: ImportJobs  # client imports from the panel, off the request


def panel_of(app: Starlette) -> PanelState:
    state = getattr(app.state, "panel", None)
    if not isinstance(state, PanelState):  # only create_app sets it
        raise TypeError("not a mailctl panel app")
    return state


def panel(request: Request) -> PanelState:
    return panel_of(request.app)
