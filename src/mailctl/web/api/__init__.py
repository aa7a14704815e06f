"""/api/v1: the REST API, a thin adapter over the services like the CLI and the panel.

It is its own Starlette app, reached before the panel's session middleware (see
`ApiSplit`): no cookie is read under /api/, so a browser's session can never authenticate an
API call and a page elsewhere can never make one for it (no CSRF to defend against). A key in
`Authorization: Bearer` is the only credential.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from mailctl.config import Settings
from mailctl.web.api import clients, content, mailings, people
from mailctl.web.api.framework import Operation, routes, to_problem
from mailctl.web.api.limits import RateLimit
from mailctl.web.api.openapi import BASE, ERRORS, document
from mailctl.web.state import PanelState, panel

OPERATIONS: list[Operation] = [
    *people.OPERATIONS,
    *clients.OPERATIONS,
    *content.OPERATIONS,
    *mailings.OPERATIONS,
]
PREFIX = "/api/"


def _document() -> dict[str, Any]:
    return document(OPERATIONS)


async def openapi_json(request: Request) -> Response:
    return Response(
        json.dumps(request.app.state.openapi, indent=1),
        media_type="application/json",
    )


async def docs(request: Request) -> Response:
    doc = request.app.state.openapi
    groups: dict[str, list[tuple[str, str, Any]]] = {}
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            groups.setdefault(op["tags"][0], []).append((path, method, op))
    errors = [
        ((status, HTTPStatus(status).phrase.lower().replace(" ", "-")), why)
        for status, why in ERRORS.items()
    ]
    template = panel(request).templates.env.get_template("api/docs.html")
    html = template.render(doc=doc, groups=list(groups.items()), base=BASE, errors=errors)
    return HTMLResponse(html)


async def _error(request: Request, exc: Exception) -> Response:
    return to_problem(exc)


def create_api(state: PanelState, settings: Settings) -> Starlette:
    limiter = RateLimit(settings.api.rate_limit, settings.api.rate_window_seconds)
    api_routes: list[BaseRoute] = [
        Route(f"{BASE}/openapi.json", openapi_json, methods=["GET"]),
        Route(f"{BASE}/docs", docs, methods=["GET"]),
        *routes(OPERATIONS, limiter, BASE),
    ]
    api = Starlette(
        routes=api_routes,
        exception_handlers={HTTPException: _error, Exception: _error},
    )
    api.state.panel = state
    api.state.openapi = _document()
    return api


class ApiSplit:
    """Sends /api/ to the API app and everything else to the panel (with its sessions)."""

    def __init__(self, panel_app: ASGIApp, api: ASGIApp) -> None:
        self.panel_app = panel_app
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and (path.startswith(PREFIX) or path == PREFIX.rstrip("/")):
            await self.api(scope, receive, send)
            return
        await self.panel_app(scope, receive, send)
