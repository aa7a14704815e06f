"""Tag helpers below every service that tags clients (clients, imports, sign-up forms)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from sqlmodel import Session, col, select

from mailctl.errors import Invalid, NotFound
from mailctl.models import ClientTag, Tag

TAG_MAX = 64
# Letters, digits, spaces and a few marks; never ';' (the CSV separator) or ',' (lists).
_NAME = re.compile(r"[\w][\w .\-+&/]*", re.UNICODE)


def clean_tag(name: str) -> str:
    value = " ".join((name or "").split())
    if not value:
        raise Invalid("a tag name must not be empty")
    if len(value) > TAG_MAX:
        raise Invalid(f"tag {value[:TAG_MAX]}... is too long (at most {TAG_MAX} characters)")
    if not _NAME.fullmatch(value):
        raise Invalid(f"tag {value!r}: use letters, digits, spaces and . - + & / (no ';' or ',')")
    return value


def clean_tags(names: Iterable[str]) -> list[str]:
    """Cleaned, without repeats (case-insensitive), in the order given."""
    out: dict[str, str] = {}
    for name in names:
        value = clean_tag(name)
        out.setdefault(value.lower(), value)
    return list(out.values())


def find_tags(session: Session, owner_id: int, names: Sequence[str]) -> list[Tag]:
    """The owner's tags of these names; NotFound names the first that does not exist."""
    wanted = clean_tags(names)
    found = {
        t.name_key: t
        for t in session.exec(
            select(Tag).where(
                Tag.owner_id == owner_id, col(Tag.name_key).in_([n.lower() for n in wanted])
            )
        ).all()
    }
    for name in wanted:
        if name.lower() not in found:
            raise NotFound(f"tag {name} not found")
    return [found[n.lower()] for n in wanted]


def ensure_tags(session: Session, owner_id: int, names: Sequence[str]) -> list[Tag]:
    """The owner's tags of these names, creating the missing ones."""
    wanted = clean_tags(names)
    if not wanted:
        return []
    keys = [n.lower() for n in wanted]
    found = {
        t.name_key: t
        for t in session.exec(
            select(Tag).where(Tag.owner_id == owner_id, col(Tag.name_key).in_(keys))
        ).all()
    }
    for name in wanted:
        if name.lower() not in found:
            tag = Tag(owner_id=owner_id, name=name, name_key=name.lower())
            session.add(tag)
            found[name.lower()] = tag
    session.flush()
    return [found[k] for k in keys]


def link_tags(session: Session, client_id: int, tags: Sequence[Tag]) -> None:
    have = set(session.exec(select(ClientTag.tag_id).where(ClientTag.client_id == client_id)).all())
    session.add_all(
        ClientTag(client_id=client_id, tag_id=t.id or 0) for t in tags if t.id not in have
    )
    session.flush()


def tags_of(session: Session, client_ids: Sequence[int]) -> dict[int, list[str]]:
    """Each client's tag names, sorted, in one query per thousand clients."""
    out: dict[int, list[str]] = {i: [] for i in client_ids}
    ids = list(out)
    for start in range(0, len(ids), 1000):
        rows = session.exec(
            select(ClientTag.client_id, Tag.name)
            .join(Tag, col(Tag.id) == ClientTag.tag_id)
            .where(col(ClientTag.client_id).in_(ids[start : start + 1000]))
            .order_by(col(Tag.name_key))
        ).all()
        for client_id, name in rows:
            out[client_id].append(name)
    return out
