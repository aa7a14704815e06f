"""Recipients ("clients"): one owner each, email unique per owner without regard to case."""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete as sa_delete
from sqlalchemy import exists, func, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from mailctl.db import utcnow
from mailctl.errors import Conflict
from mailctl.models import Client, ClientTag, SuppressionReason, Tag, User
from mailctl.sending.links import unsubscribe_client_id
from mailctl.services.access import CONTENT_ROLES, Q, get_visible, owner_scope, require_role
from mailctl.services.client_import import CSV_HEADER, ImportReport, clean_row, import_stream
from mailctl.services.csvfile import CsvStream, batched
from mailctl.services.events import CLIENT_UNSUBSCRIBED, emit
from mailctl.services.fields import merged_attrs, owner_fields
from mailctl.services.suppressions import suppress_address
from mailctl.services.tagging import clean_tag, clean_tags, ensure_tags, link_tags, tags_of

_clean = clean_row  # the same checks for a row typed in and a row of a CSV file


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
    address goes on the owner's suppression list, which outlives the client row. A second
    click keeps the first one's time and tells the webhooks nothing new."""
    client_id = unsubscribe_client_id(secret, token)
    known = session.get(Client, client_id)
    again = known is not None and known.unsubscribed_at is not None
    client = known if again else set_unsubscribed(session=session, client_id=client_id)
    if client is not None:
        suppress_address(
            session,
            owner_id=client.owner_id,
            email=client.email,
            reason=SuppressionReason.unsubscribed.value,
            secret=secret,
        )
    if client is not None and not again:
        emit(
            session,
            client.owner_id,
            CLIENT_UNSUBSCRIBED,
            {"client_id": client.id, "email": client.email, "via": "link", "tags": []},
        )
    return client


def import_clients(
    *, session: Session, actor: User, data: bytes, strict: bool = False
) -> ImportReport:
    """Import `email,full_name,comment,tags,...` rows held in memory (client_import.py streams
    a file; this is the same import over bytes, in the caller's one transaction, the new ids
    kept); bad rows are reported by line, good rows go in.

    With strict, one bad row rejects the whole file and nothing is written.
    """
    check_may_import(actor=actor)
    return import_stream(
        session=session, actor=actor, stream=io.BytesIO(data), strict=strict, keep_ids=True
    )


EXPORT_BATCH = 1000


def export_clients(*, session: Session, actor: User) -> str:
    """The whole export as one string (tests, small lists); `export_csv` streams it."""
    return "".join(export_csv(session=session, actor=actor))


def export_csv(*, session: Session, actor: User) -> CsvStream:
    """The actor's clients as CSV that `import_clients` reads back to the same values: the
    known columns, tags `;`-separated, then one column per custom field any client has.

    Streamed in pieces, read a thousand clients at a time (a server-side cursor on
    PostgreSQL): memory stays flat in the number of clients. Access is checked at once, before
    the first piece; the session must stay open until the last."""
    require_role(actor, CONTENT_ROLES, "list clients")
    # Columns, not ORM objects: nothing lands in the session's identity map.
    columns = sa_select(
        col(Client.id),
        col(Client.email),
        col(Client.full_name),
        col(Client.comment),
        col(Client.attrs),
    )
    scope = owner_scope(columns, Client, actor).order_by(col(Client.id))
    # The header needs every custom field name first: one pass over the attrs column alone.
    attrs = owner_scope(select(Client.attrs), Client, actor)
    extra = sorted({name for (values,) in _streamed(session, attrs) for name in (values or {})})

    def rows() -> Iterator[tuple[str, ...]]:
        for batch in batched(_streamed(session, scope), EXPORT_BATCH):
            labels = tags_of(session, [row[0] for row in batch])
            for client_id, email, full_name, comment, values in batch:
                yield (
                    email,
                    full_name,
                    comment,
                    ";".join(labels[client_id]),
                    *((values or {}).get(name, "") for name in extra),
                )

    return CsvStream(CSV_HEADER + tuple(extra), rows())


def _streamed(session: Session, stmt: Any) -> Iterator[Any]:
    """The rows of a query, fetched EXPORT_BATCH at a time and never all held."""
    return iter(session.execute(stmt.execution_options(yield_per=EXPORT_BATCH)))
