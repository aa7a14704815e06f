"""Tags: labels on clients, per owner, that mailings and sign-up forms are addressed to."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from mailctl.errors import Conflict, Invalid
from mailctl.models import ClientTag, Mailing, MailingTag, Tag, User
from mailctl.services.access import CONTENT_ROLES, acting_owner, owner_scope, require_role
from mailctl.services.clients import get_client
from mailctl.services.tagging import (
    clean_tag,
    clean_tags,
    ensure_tags,
    find_tags,
    link_tags,
    tags_of,
)


def tag_client(*, session: Session, actor: User, client_id: int, names: Sequence[str]) -> list[str]:
    """Give a client these tags (made if new); returns the client's tags."""
    client = get_client(session=session, actor=actor, client_id=client_id)
    if not names:
        raise Invalid("give at least one tag")
    link_tags(session, client.id or 0, ensure_tags(session, client.owner_id, names))
    return tags_of(session, [client.id or 0])[client.id or 0]


def untag_client(
    *, session: Session, actor: User, client_id: int, names: Sequence[str]
) -> list[str]:
    """Take these tags off a client (a tag it does not have is not an error)."""
    client = get_client(session=session, actor=actor, client_id=client_id)
    if not names:
        raise Invalid("give at least one tag")
    keys = [n.lower() for n in clean_tags(names)]
    tag_ids = select(Tag.id).where(Tag.owner_id == client.owner_id, col(Tag.name_key).in_(keys))
    session.execute(
        delete(ClientTag).where(
            col(ClientTag.client_id) == client.id, col(ClientTag.tag_id).in_(tag_ids)
        )
    )
    session.flush()
    return tags_of(session, [client.id or 0])[client.id or 0]


@dataclass(frozen=True)
class TagRow:
    tag: Tag
    clients: int


def list_tags(*, session: Session, actor: User, owner_id: int | None = None) -> list[TagRow]:
    """The actor's tags (an admin: everyone's, or one owner's) with how many clients each has."""
    require_role(actor, CONTENT_ROLES, "list tags")
    counts = (
        select(ClientTag.tag_id, func.count().label("n")).group_by(col(ClientTag.tag_id)).subquery()
    )
    stmt = owner_scope(select(Tag, counts.c.n), Tag, actor).outerjoin(
        counts, counts.c.tag_id == Tag.id
    )
    if owner_id is not None:
        stmt = stmt.where(Tag.owner_id == owner_id)
    rows = session.exec(stmt.order_by(col(Tag.owner_id), col(Tag.name_key))).all()
    return [TagRow(tag=t, clients=n or 0) for t, n in rows]


def _own_tag(session: Session, actor: User, name: str, owner_id: int | None) -> Tag:
    require_role(actor, CONTENT_ROLES, "change tags")
    owner = acting_owner(actor, owner_id, f"tag {clean_tag(name)} not found")
    return find_tags(session, owner, [name])[0]


def delete_tag(*, session: Session, actor: User, name: str, owner_id: int | None = None) -> None:
    """Delete one of the actor's tags (clients keep existing); refused while a mailing that
    still has runs to come is addressed to it, which would silently lose its audience."""
    tag = _own_tag(session, actor, name, owner_id)
    using = session.exec(
        select(Mailing.id)
        .join(MailingTag, col(MailingTag.mailing_id) == Mailing.id)
        .where(MailingTag.tag_id == tag.id, col(Mailing.next_run_at).is_not(None))
        .order_by(col(Mailing.id))
    ).first()
    if using is not None:
        raise Conflict(f"tag {tag.name} is the audience of mailing {using}; change that first")
    session.delete(tag)
    session.flush()


def set_tag_public(
    *, session: Session, actor: User, name: str, public: bool, owner_id: int | None = None
) -> Tag:
    """A public tag is offered on the preference page, so a recipient may leave just it."""
    tag = _own_tag(session, actor, name, owner_id)
    tag.is_public = public
    session.add(tag)
    return tag
