"""Recipients ("clients"): one owner each, email unique per owner without regard to case."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from mailctl.db import utcnow
from mailctl.errors import Conflict, Invalid
from mailctl.models import Client, User
from mailctl.sending.links import unsubscribe_client_id
from mailctl.services.access import CONTENT_ROLES, Q, get_visible, owner_scope, require_role
from mailctl.services.csvfile import restore_cell, write_csv
from mailctl.services.validation import clean_email, clean_text

CSV_HEADER = ("email", "full_name", "comment")


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
    *, session: Session, actor: User, email: str, full_name: str = "", comment: str = ""
) -> Client:
    check_may_add(actor=actor)
    address, name, note = _clean(email, full_name, comment)
    assert actor.id is not None
    if _taken(session, actor.id, address):
        raise Conflict(f"client {address} already exists")
    client = Client(
        owner_id=actor.id, email=address, email_key=address.lower(), full_name=name, comment=note
    )
    session.add(client)
    session.flush()
    return client


def list_clients(
    *,
    session: Session,
    actor: User,
    search: str | None = None,
    limit: int | None = None,
    offset: int = 0,
    owner_id: int | None = None,
) -> Sequence[Client]:
    """The clients the actor may see, optionally only one owner's (an admin picking for a
    message or a mailing of that owner)."""
    require_role(actor, CONTENT_ROLES, "list clients")
    stmt = _search(owner_scope(select(Client), Client, actor), search).order_by(col(Client.id))
    if owner_id is not None:
        stmt = stmt.where(Client.owner_id == owner_id)
    if limit is not None:
        stmt = stmt.limit(limit).offset(offset)
    return session.exec(stmt).all()


def count_clients(*, session: Session, actor: User, search: str | None = None) -> int:
    require_role(actor, CONTENT_ROLES, "list clients")
    stmt = _search(owner_scope(select(func.count()).select_from(Client), Client, actor), search)
    return session.exec(stmt).one()


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
) -> Client:
    client = get_client(session=session, actor=actor, client_id=client_id)
    address, name, note = _clean(
        email if email is not None else client.email,
        full_name if full_name is not None else client.full_name,
        comment if comment is not None else client.comment,
    )
    if _taken(session, client.owner_id, address, exclude=client.id):
        raise Conflict(f"client {address} already exists")
    client.email, client.email_key, client.full_name, client.comment = (
        address,
        address.lower(),
        name,
        note,
    )
    session.add(client)
    return client


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
    """Follow an unsubscribe link: the signed link is the proof, no actor involved."""
    return set_unsubscribed(session=session, client_id=unsubscribe_client_id(secret, token))


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
    rows = _csv_rows(text)
    # One query for the owner's addresses, not one per row; `seen` grows with the file.
    seen = set(session.exec(select(Client.email_key).where(Client.owner_id == actor.id)).all())
    for line, row in rows:
        if isinstance(row, str):
            report.errors.append((line, row))
            continue
        try:
            address, name, note = _clean(row[0], row[1], row[2])
        except Invalid as exc:
            report.errors.append((line, str(exc)))
            continue
        key = address.lower()
        if key in seen:
            report.errors.append((line, f"client {address} already exists"))
            continue
        seen.add(key)
        report.added.append(
            Client(owner_id=actor.id, email=address, email_key=key, full_name=name, comment=note)
        )
    if strict and report.errors:
        line, reason = report.errors[0]
        raise Invalid(
            f"line {line}: {reason} ({len(report.errors)} bad rows in all; nothing imported)"
        )
    session.add_all(report.added)
    session.flush()
    return report


def _csv_rows(text: str) -> Iterable[tuple[int, tuple[str, str, str] | str]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise Invalid("the file is empty; expected a header email,full_name,comment") from None
    except csv.Error as exc:
        raise Invalid(f"line 1: not CSV: {exc}") from None
    names = [h.strip().lower() for h in header]
    if "email" not in names or any(n not in CSV_HEADER for n in names):
        raise Invalid(f"line 1: header must be email,full_name,comment (got {','.join(header)})")
    index = {n: i for i, n in enumerate(names)}
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
                restore_cell(row[index["email"]]),
                restore_cell(row[index["full_name"]]) if "full_name" in index else "",
                restore_cell(row[index["comment"]]) if "comment" in index else "",
            ),
        )


def export_clients(*, session: Session, actor: User) -> str:
    """The actor's clients as CSV that `import_clients` reads back to the same values."""
    return write_csv(
        CSV_HEADER,
        (
            (client.email, client.full_name, client.comment)
            for client in list_clients(session=session, actor=actor)
        ),
    )
