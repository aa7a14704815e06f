"""Recipients ("clients"): one owner each, email unique per owner without regard to case."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete as sa_delete
from sqlalchemy import exists, func, or_
from sqlmodel import Session, col, select

from mailctl.db import utcnow
from mailctl.errors import Conflict, Invalid
from mailctl.models import Client, ClientTag, SuppressionReason, Tag, User
from mailctl.sending.links import unsubscribe_client_id
from mailctl.services.access import CONTENT_ROLES, Q, get_visible, owner_scope, require_role
from mailctl.services.csvfile import restore_cell, write_csv
from mailctl.services.events import CLIENT_UNSUBSCRIBED, emit
from mailctl.services.fields import (
    clean_field_name,
    clean_value,
    ensure_fields,
    merged_attrs,
    owner_fields,
)
from mailctl.services.suppressions import suppress_address
from mailctl.services.tagging import clean_tag, clean_tags, ensure_tags, link_tags, tags_of
from mailctl.services.validation import clean_email, clean_text

CSV_HEADER = ("email", "full_name", "comment", "tags")  # tags: ";"-separated


def _clean(email: str, full_name: str | None, comment: str | None) -> tuple[str, str, str]:
    return (
        clean_email(email),
        clean_text(full_name, field="full name", max_len=200, single_line=True),
        clean_text(comment, field="comment", max_len=2000),
    )


def _taken(session: Session, owner_id: int, email: str, exclude: int | None = None) -> bool:
    stmt = select(Client.id).where(Client.owner_id == owner_id, Client.email_key == email.lower())
    if exclude is not None:
        stmt = stmt.where(Client.id != exclude)
    return session.exec(stmt).first() is not None


def check_may_add(*, actor: User) -> None:
    """Forbidden unless the actor may add clients (the form is not even shown otherwise)."""
    require_role(actor, CONTENT_ROLES, "add clients")


def check_may_import(*, actor: User) -> None:
    """Forbidden unless the actor may import clients (checked before an upload is read)."""
    require_role(actor, CONTENT_ROLES, "import clients")


def add_client(
    *,
    session: Session,
    actor: User,
    email: str,
    full_name: str = "",
    comment: str = "",
    tags: Sequence[str] = (),
) -> Client:
    check_may_add(actor=actor)
    address, name, note = _clean(email, full_name, comment)
    assert actor.id is not None
    if _taken(session, actor.id, address):
        raise Conflict(f"client {address} already exists")
    labels = clean_tags(tags)  # checked before anything is written
    client = Client(
        owner_id=actor.id, email=address, email_key=address.lower(), full_name=name, comment=note
    )
    session.add(client)
    session.flush()
    if labels:
        link_tags(session, client.id or 0, ensure_tags(session, actor.id, labels))
    return client


def list_clients(
    *,
    session: Session,
    actor: User,
    search: str | None = None,
    limit: int | None = None,
    offset: int = 0,
    owner_id: int | None = None,
    tag: str | None = None,
) -> Sequence[Client]:
    """The clients the actor may see, optionally only one owner's (an admin picking for a
    message or a mailing of that owner), or only those with a tag."""
    require_role(actor, CONTENT_ROLES, "list clients")
    stmt = _tagged(_search(owner_scope(select(Client), Client, actor), search), tag)
    stmt = stmt.order_by(col(Client.id))
    if owner_id is not None:
        stmt = stmt.where(Client.owner_id == owner_id)
    if limit is not None:
        stmt = stmt.limit(limit).offset(offset)
    return session.exec(stmt).all()


def count_clients(
    *, session: Session, actor: User, search: str | None = None, tag: str | None = None
) -> int:
    require_role(actor, CONTENT_ROLES, "list clients")
    stmt = _search(owner_scope(select(func.count()).select_from(Client), Client, actor), search)
    return session.exec(_tagged(stmt, tag)).one()


def _tagged(stmt: Q, tag: str | None) -> Q:
    """Only clients with this tag (of their own owner's, so an admin sees every owner's)."""
    if not tag:
        return stmt
    key = clean_tag(tag).lower()
    return stmt.where(
        exists()
        .where(col(ClientTag.client_id) == Client.id)
        .where(col(ClientTag.tag_id) == Tag.id)
        .where(col(Tag.owner_id) == Client.owner_id, col(Tag.name_key) == key)
    )


def _search(stmt: Q, search: str | None) -> Q:
    if not search:
        return stmt
    like = f"%{search.strip().lower()}%"
    return stmt.where(
        or_(
            col(Client.email_key).like(like),
            func.lower(Client.full_name).like(like),
            func.lower(Client.comment).like(like),
        )
    )


def get_client(*, session: Session, actor: User, client_id: int) -> Client:
    require_role(actor, CONTENT_ROLES, "see clients")
    return get_visible(session, Client, client_id, actor)


def edit_client(
    *,
    session: Session,
    actor: User,
    client_id: int,
    email: str | None = None,
    full_name: str | None = None,
    comment: str | None = None,
    attrs: Mapping[str, str | None] | None = None,
    tags: Sequence[str] | None = None,
) -> Client:
    """Change what is given; `attrs` sets custom fields (an empty value clears one), each
    checked against the owner's fields; `tags` becomes the client's exact set of tags."""
    client = get_client(session=session, actor=actor, client_id=client_id)
    labels = clean_tags(tags) if tags is not None else None
    address, name, note = _clean(
        email if email is not None else client.email,
        full_name if full_name is not None else client.full_name,
        comment if comment is not None else client.comment,
    )
    if _taken(session, client.owner_id, address, exclude=client.id):
        raise Conflict(f"client {address} already exists")
    if attrs:
        client.attrs = merged_attrs(
            client.attrs or {}, attrs, owner_fields(session, client.owner_id)
        )
    if labels is not None:
        keep = ensure_tags(session, client.owner_id, labels)
        session.execute(
            sa_delete(ClientTag).where(
                col(ClientTag.client_id) == client.id,
                col(ClientTag.tag_id).not_in([t.id for t in keep]),
            )
        )
        link_tags(session, client.id or 0, keep)
    client.email, client.email_key, client.full_name, client.comment = (
        address,
        address.lower(),
        name,
        note,
    )
    session.add(client)
    return client


@dataclass(frozen=True)
class ClientForm:
    """What the add and edit pages start from: the client, its tags, the owner's fields."""

    client: Client | None
    tags: list[str]
    fields: list[str]


def client_form(*, session: Session, actor: User, client_id: int | None = None) -> ClientForm:
    if client_id is None:
        check_may_add(actor=actor)
        assert actor.id is not None
        return ClientForm(None, [], owner_fields(session, actor.id))
    client = get_client(session=session, actor=actor, client_id=client_id)
    return ClientForm(
        client, tags_of(session, [client_id])[client_id], owner_fields(session, client.owner_id)
    )


def delete_client(*, session: Session, actor: User, client_id: int) -> None:
    session.delete(get_client(session=session, actor=actor, client_id=client_id))


def set_unsubscribed(
    *, session: Session, client_id: int, unsubscribed: bool = True
) -> Client | None:
    """The recipient's own choice, proven by a signed link: no actor, the client may be gone."""
    client = session.get(Client, client_id)
    if client is not None:
        client.unsubscribed_at = utcnow() if unsubscribed else None
        session.add(client)
    return client


def unsubscribe_target(*, session: Session, token: str, secret: str) -> Client | None:
    """The client an unsubscribe link is for (None once deleted); Invalid for a forged link."""
    return session.get(Client, unsubscribe_client_id(secret, token))


def unsubscribe(*, session: Session, token: str, secret: str) -> Client | None:
    """Follow an unsubscribe link: the signed link is the proof, no actor involved. The
    address goes on the owner's suppression list, which outlives the client row."""
    client = set_unsubscribed(session=session, client_id=unsubscribe_client_id(secret, token))
    if client is not None:
        suppress_address(
            session,
            owner_id=client.owner_id,
            email=client.email,
            reason=SuppressionReason.unsubscribed.value,
            secret=secret,
        )
        emit(
            session,
            client.owner_id,
            CLIENT_UNSUBSCRIBED,
            {"client_id": client.id, "email": client.email, "via": "link", "tags": []},
        )
    return client


@dataclass
class ImportReport:
    added: list[Client] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)


def import_clients(
    *, session: Session, actor: User, data: bytes, strict: bool = False
) -> ImportReport:
    """Import `email,full_name,comment` rows; bad rows are reported by line, good rows go in.

    With strict, one bad row rejects the whole file and nothing is written.
    """
    check_may_import(actor=actor)
    assert actor.id is not None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Invalid(f"the file is not UTF-8 (byte {exc.start}); save it as UTF-8 CSV") from None
    report = ImportReport()
    tagged: list[tuple[Client, list[str]]] = []
    extra, rows = _csv_rows(text)
    # One query for the owner's addresses, not one per row; `seen` grows with the file.
    seen = set(session.exec(select(Client.email_key).where(Client.owner_id == actor.id)).all())
    for line, row in rows:
        if isinstance(row, str):
            report.errors.append((line, row))
            continue
        try:
            address, name, note = _clean(row[0], row[1], row[2])
            labels = clean_tags(t for t in row[3].split(";") if t.strip())
            values = {k: clean_value(k, v) for k, v in row[4].items() if v.strip()}
        except Invalid as exc:
            report.errors.append((line, str(exc)))
            continue
        key = address.lower()
        if key in seen:
            report.errors.append((line, f"client {address} already exists"))
            continue
        seen.add(key)
        report.added.append(
            Client(
                owner_id=actor.id,
                email=address,
                email_key=key,
                full_name=name,
                comment=note,
                attrs=values,
            )
        )
        if labels:
            tagged.append((report.added[-1], labels))
    if strict and report.errors:
        line, reason = report.errors[0]
        raise Invalid(
            f"line {line}: {reason} ({len(report.errors)} bad rows in all; nothing imported)"
        )
    # Every column besides the known ones is a custom field, made if the owner lacks it.
    ensure_fields(session, actor.id, extra)
    session.add_all(report.added)
    session.flush()
    tags = {t.name_key: t for t in ensure_tags(session, actor.id, _all_labels(tagged))}
    session.add_all(
        ClientTag(client_id=client.id or 0, tag_id=tags[label.lower()].id or 0)
        for client, labels in tagged
        for label in labels
    )
    session.flush()
    return report


def _all_labels(tagged: list[tuple[Client, list[str]]]) -> list[str]:
    return list({label.lower(): label for _, labels in tagged for label in labels}.values())


Row = tuple[str, str, str, str, dict[str, str]]  # email, name, comment, tags, custom fields


def _csv_rows(text: str) -> tuple[list[str], Iterable[tuple[int, Row | str]]]:
    """The custom field columns, and the rows by the line each starts on."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise Invalid("the file is empty; expected a header email,full_name,comment") from None
    except csv.Error as exc:
        raise Invalid(f"line 1: not CSV: {exc}") from None
    names = [h.strip().lower() for h in header]
    if "email" not in names:
        raise Invalid(
            "line 1: header must be email,full_name,comment,tags and any custom fields, with"
            f" an email column (got {','.join(header)})"
        )
    extra = [n for n in names if n not in CSV_HEADER]
    try:
        fields = [clean_field_name(n) for n in extra]
    except Invalid as exc:
        raise Invalid(f"line 1: {exc}") from None
    if len(set(names)) != len(names):
        raise Invalid(f"line 1: a column appears twice in {','.join(header)}")
    return fields, _rows(reader, names)


def _rows(reader: Any, names: list[str]) -> Iterable[tuple[int, Row | str]]:
    index = {n: i for i, n in enumerate(names)}
    extra = [n for n in names if n not in CSV_HEADER]

    def cell(row: list[str], name: str) -> str:
        return restore_cell(row[index[name]]) if name in index else ""

    while True:
        # A row is reported by the line it starts on: a quoted field may span lines, and an
        # unclosed quote runs on to the end of the file.
        line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield line, f"broken CSV: {exc}"
            continue
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(names):
            yield line, f"expected {len(names)} fields, found {len(row)}"
            continue
        # Undo the guard quote our export puts before formula-like cells (csvfile.py).
        yield (
            line,
            (
                cell(row, "email"),
                cell(row, "full_name"),
                cell(row, "comment"),
                cell(row, "tags"),
                {n: cell(row, n) for n in extra},
            ),
        )


def export_clients(*, session: Session, actor: User) -> str:
    """The actor's clients as CSV that `import_clients` reads back to the same values: the
    known columns, tags `;`-separated, then one column per custom field."""
    found = list_clients(session=session, actor=actor)
    labels = tags_of(session, [c.id or 0 for c in found])
    extra = sorted({name for c in found for name in (c.attrs or {})})
    return write_csv(
        CSV_HEADER + tuple(extra),
        (
            (
                client.email,
                client.full_name,
                client.comment,
                ";".join(labels[client.id or 0]),
                *((client.attrs or {}).get(name, "") for name in extra),
            )
            for client in found
        ),
    )
