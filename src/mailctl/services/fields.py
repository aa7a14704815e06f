"""Custom fields: names an owner defines, values each client may have (`client.attrs`)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from sqlmodel import Session, col, select

from mailctl.errors import Conflict, Invalid, NotFound
from mailctl.models import Client, ClientField, User
from mailctl.services.access import CONTENT_ROLES, acting_owner, owner_scope, require_role
from mailctl.services.validation import clean_text

NAME_MAX = 40
VALUE_MAX = 500  # sending/render.py's LARGEST client has values this long
FIELDS_MAX = 50  # per owner: a CSV with a thousand columns is a mistake, not a list
# A name is usable as `{{ client.attrs.<name> }}`: a lower-case identifier.
_NAME = re.compile(r"[a-z][a-z0-9_]*")
RESERVED = frozenset(
    {"id", "email", "full_name", "first_name", "comment", "tags", "attrs"}
    # dict methods: `client.attrs.items` would be the method, not the field
    | {"items", "keys", "values", "get", "pop", "popitem", "update", "copy", "clear"}
    | {"setdefault", "fromkeys", "fill"}
)


def clean_field_name(name: str) -> str:
    value = (name or "").strip().lower()
    if not value:
        raise Invalid("a field name must not be empty")
    if len(value) > NAME_MAX or not _NAME.fullmatch(value):
        raise Invalid(
            f"field name {value[:NAME_MAX]!r}: use a lower-case letter, then letters, digits"
            f" or _ (at most {NAME_MAX} characters)"
        )
    if value in RESERVED:
        raise Invalid(f"field name {value!r} is taken by a built-in one")
    return value


def owner_fields(session: Session, owner_id: int) -> list[str]:
    return list(
        session.exec(
            select(ClientField.name)
            .where(ClientField.owner_id == owner_id)
            .order_by(col(ClientField.name))
        ).all()
    )


def ensure_fields(session: Session, owner_id: int, names: Iterable[str]) -> list[str]:
    """The owner's fields of these names, creating the missing ones (CSV import)."""
    wanted = list(dict.fromkeys(clean_field_name(n) for n in names))
    have = set(owner_fields(session, owner_id))
    new = [n for n in wanted if n not in have]
    if len(have) + len(new) > FIELDS_MAX:
        raise Invalid(f"at most {FIELDS_MAX} custom fields per account")
    session.add_all(ClientField(owner_id=owner_id, name=n) for n in new)
    session.flush()
    return wanted


def clean_value(name: str, value: str | None) -> str:
    return clean_text(value, field=f"field {name}", max_len=VALUE_MAX, single_line=True)


def merged_attrs(
    current: Mapping[str, str], changes: Mapping[str, str | None], allowed: Sequence[str]
) -> dict[str, str]:
    """`current` with `changes` applied (an empty value or None removes one), every name
    checked against the owner's fields."""
    out = dict(current)
    for raw, value in changes.items():
        name = (raw or "").strip().lower()
        if name not in allowed:
            known = ", ".join(allowed) or "none yet"
            raise Invalid(f"no custom field {raw!r} (yours: {known}); add it with `field add`")
        text = clean_value(name, value)
        if text:
            out[name] = text
        else:
            out.pop(name, None)
    return out


def parse_assignments(pairs: Sequence[str]) -> dict[str, str]:
    """`city=Riga` strings (the CLI's --set) as a mapping."""
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise Invalid(f"--set {pair!r}: use NAME=VALUE (an empty value clears it)")
        out[name.strip()] = value
    return out


def list_fields(*, session: Session, actor: User) -> Sequence[ClientField]:
    require_role(actor, CONTENT_ROLES, "list custom fields")
    stmt = owner_scope(select(ClientField), ClientField, actor)
    return session.exec(stmt.order_by(col(ClientField.owner_id), col(ClientField.name))).all()


def add_field(
    *, session: Session, actor: User, name: str, owner_id: int | None = None
) -> ClientField:
    require_role(actor, CONTENT_ROLES, "add custom fields")
    owner = acting_owner(actor, owner_id, "user not found")
    value = clean_field_name(name)
    if value in owner_fields(session, owner):
        raise Conflict(f"field {value} already exists")
    ensure_fields(session, owner, [value])
    found = session.exec(
        select(ClientField).where(ClientField.owner_id == owner, ClientField.name == value)
    ).one()
    return found


def delete_field(*, session: Session, actor: User, name: str, owner_id: int | None = None) -> int:
    """Delete one of the actor's fields (an admin: any owner's) and its value on every
    client; returns how many had one."""
    require_role(actor, CONTENT_ROLES, "delete custom fields")
    key = (name or "").strip().lower()
    owner = acting_owner(actor, owner_id, f"field {key} not found")
    found = session.exec(
        select(ClientField).where(ClientField.owner_id == owner, ClientField.name == key)
    ).first()
    if found is None:
        raise NotFound(f"field {key} not found")
    cleared = 0
    # Streamed in id order: the JSON column is not queryable the same way on every backend.
    for client in session.exec(select(Client).where(Client.owner_id == owner)):
        if key in (client.attrs or {}):
            client.attrs = {k: v for k, v in client.attrs.items() if k != key}
            session.add(client)
            cleared += 1
    session.delete(found)
    session.flush()
    return cleared
