"""The preference page behind every message's unsubscribe link: leave everything (the
one-click unsubscribe, services/clients.py) or only some of the owner's public tags."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import delete
from sqlmodel import Session, col, select

from mailctl.models import Client, ClientTag, Tag
from mailctl.services.clients import unsubscribe_target
from mailctl.services.events import CLIENT_SUBSCRIBED, CLIENT_UNSUBSCRIBED, emit


@dataclass(frozen=True)
class Preferences:
    client: Client | None  # None once the client was deleted
    public_tags: list[tuple[Tag, bool]]  # the owner's public tags, and whether the client has each


def _public(session: Session, client: Client) -> list[tuple[Tag, bool]]:
    tags = session.exec(
        select(Tag)
        .where(Tag.owner_id == client.owner_id, col(Tag.is_public) == True)  # noqa: E712
        .order_by(col(Tag.name_key))
    ).all()
    have = set(session.exec(select(ClientTag.tag_id).where(ClientTag.client_id == client.id)).all())
    return [(t, t.id in have) for t in tags]


def preferences(*, session: Session, token: str, secret: str) -> Preferences:
    """What the page shows; Invalid for a forged link. The signed link is the proof."""
    client = unsubscribe_target(session=session, token=token, secret=secret)
    return Preferences(client, _public(session, client) if client is not None else [])


def set_preferences(
    *, session: Session, token: str, secret: str, keep: Collection[int]
) -> Preferences:
    """Keep exactly the public tags in `keep` (ids); private tags are never touched, nor
    offered, and ids of another owner's tags change nothing."""
    client = unsubscribe_target(session=session, token=token, secret=secret)
    if client is None:
        return Preferences(None, [])
    public = _public(session, client)
    leave = [t.id for t, has in public if has and t.id not in keep]
    join = [t for t, has in public if not has and t.id in keep]
    if leave:
        session.execute(
            delete(ClientTag).where(
                col(ClientTag.client_id) == client.id, col(ClientTag.tag_id).in_(leave)
            )
        )
    session.add_all(ClientTag(client_id=client.id or 0, tag_id=t.id or 0) for t in join)
    session.flush()
    about = {"client_id": client.id, "email": client.email, "via": "preferences"}
    if leave:
        names = sorted(t.name for t, _ in public if t.id in leave)
        emit(session, client.owner_id, CLIENT_UNSUBSCRIBED, {**about, "tags": names})
    if join:
        names = sorted(t.name for t in join)
        emit(session, client.owner_id, CLIENT_SUBSCRIBED, {**about, "tags": names})
    return Preferences(client, _public(session, client))
