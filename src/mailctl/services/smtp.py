"""The mail servers as an operator sees them: what each offers, and the state senders share."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from mailctl.config import Settings, SmtpServer
from mailctl.errors import MailctlError, NotFound
from mailctl.models import SmtpServerState
from mailctl.sending.pacing import WINDOWS
from mailctl.sending.probe import Probe, ProbeFailed, probe

__all__ = ["Probe", "ServerView", "SmtpTestFailed", "list_servers", "test_server"]


class SmtpTestFailed(MailctlError):
    """The server cannot be used as configured (one line says why)."""


@dataclass(frozen=True)
class ServerView:
    name: str
    address: str
    security: str
    priority: int
    weight: int
    connections: int
    limits: str  # "20/s, 50000/day" or "none"
    used: str  # messages in the current windows, "12/50000 today"
    health: str | None
    health_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _server(settings: Settings, name: str | None) -> SmtpServer:
    servers = settings.smtp.servers
    if name is None:
        return servers[0]
    for server in servers:
        if server.name == name:
            return server
    known = ", ".join(s.name for s in servers)
    raise NotFound(f"no SMTP server called {name!r} (configured: {known})")


def test_server(*, settings: Settings, name: str | None = None) -> Probe:
    """Connect to one server (the first by default), as a sender would, and log in."""
    server = _server(settings, name)
    try:
        return probe(server, deadline=settings.delivery.attempt_deadline_seconds)
    except ProbeFailed as exc:
        raise SmtpTestFailed(str(exc)) from None


def _limits(server: SmtpServer) -> str:
    parts = []
    if server.rate_per_second:
        parts.append(f"{server.rate_per_second:g}/s")
    for window, value in (
        ("min", server.rate_per_minute),
        ("h", server.rate_per_hour),
        ("day", server.rate_per_day),
    ):
        if value:
            parts.append(f"{value}/{window}")
    return ", ".join(parts) or "none"


def list_servers(*, settings: Settings, engine: Engine | None) -> list[ServerView]:
    """Every configured server with its limits, what its windows used, its last health note.
    Without a database (none yet, or unreachable) the shared state is left out."""
    states: dict[str, Any] = {}
    if engine is not None:
        try:
            with engine.connect() as conn:
                table = SmtpServerState.__table__  # type: ignore[attr-defined]
                states = {r.name: r for r in conn.execute(select(table))}
        except (DBAPIError, MailctlError):
            states = {}
    now = time.time()
    views = []
    for server in settings.smtp.servers:
        row = states.get(server.name)
        used = []
        if row is not None:
            limits = {
                "minute": server.rate_per_minute,
                "hour": server.rate_per_hour,
                "day": server.rate_per_day,
            }
            for window, length in WINDOWS:
                if not limits[window]:
                    continue
                length = float(settings.test_period_seconds or length)
                current = getattr(row, f"{window}_start") == math.floor(now / length) * length
                count = getattr(row, f"{window}_count") if current else 0
                used.append(f"{count}/{limits[window]} this {window}")
        views.append(
            ServerView(
                name=server.name,
                address=f"{server.host}:{server.port}",
                security=server.security,
                priority=server.priority,
                weight=server.weight,
                connections=server.connections,
                limits=_limits(server),
                used=", ".join(used),
                health=row.health if row is not None else None,
                health_at=row.health_at if row is not None else None,
            )
        )
    return views
