"""Clients a page at a time by keyset (the API's cursor): each page starts after the last id
of the one before, so a page deep in a large list costs what the first does, and rows added or
deleted meanwhile neither repeat nor skip one."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import Session, col, select

from mailctl.errors import Invalid
from mailctl.models import Client, User
from mailctl.services.access import CONTENT_ROLES, owner_scope, require_role
from mailctl.services.clients import _search, _tagged
from mailctl.services.tagging import tags_of
from mailctl.services.validation import ID_MAX

PAGE_MAX = 200


@dataclass(frozen=True)
class ClientPage:
    clients: Sequence[Client]
    tags: dict[int, list[str]]
    next_cursor: str | None


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"c{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        text = ""
    if not text.startswith("c") or not text[1:].isdigit() or int(text[1:]) >= ID_MAX:
        raise Invalid("cursor is not one this API gave out")
    return int(text[1:])


def client_page(
    *,
    session: Session,
    actor: User,
    search: str | None = None,
    tag: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> ClientPage:
    require_role(actor, CONTENT_ROLES, "list clients")
    limit = max(1, min(limit, PAGE_MAX))
    stmt = _tagged(_search(owner_scope(select(Client), Client, actor), search), tag)
    if cursor:
        stmt = stmt.where(col(Client.id) > decode_cursor(cursor))
    rows = list(session.exec(stmt.order_by(col(Client.id)).limit(limit + 1)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    ids = [c.id for c in rows if c.id is not None]
    return ClientPage(
        clients=rows,
        tags=tags_of(session, ids) if ids else {},
        next_cursor=encode_cursor(ids[-1]) if more and ids else None,
    )
