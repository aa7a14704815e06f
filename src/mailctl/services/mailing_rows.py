"""Mailings as lists and pages show them: with the subject, the owner and the client count,
in a fixed number of queries however long the page."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import Select

from mailctl.models import Mailing, MailingClient, Message, User
from mailctl.services.access import sees_everything
from mailctl.services.mailings import get_mailing, listing


@dataclass(frozen=True)
class MailingRow:
    """A mailing with what a page shows next to it."""

    mailing: Mailing
    subject: str
    owner_email: str | None  # None where the actor sees only their own mailings
    client_count: int


def client_counts(*, session: Session, mailing_ids: Iterable[int]) -> dict[int, int]:
    """How many clients each mailing has, in one grouped query (0 for none)."""
    ids = sorted(set(mailing_ids))
    if not ids:
        return {}
    rows = session.exec(
        select(MailingClient.mailing_id, func.count())
        .where(col(MailingClient.mailing_id).in_(ids))
        .group_by(col(MailingClient.mailing_id))
    ).all()
    return {i: 0 for i in ids} | {mailing_id: count for mailing_id, count in rows}


def client_count(*, session: Session, mailing: Mailing) -> int:
    return client_counts(session=session, mailing_ids=[mailing.id or 0]).get(mailing.id or 0, 0)


def _rows(
    session: Session, found: Sequence[tuple[Mailing, str | None, str | None]], *, owners: bool
) -> list[MailingRow]:
    counts = client_counts(session=session, mailing_ids=[m.id or 0 for m, _, _ in found])
    return [
        MailingRow(
            mailing=m,
            subject=subject or "",
            owner_email=(email or "") if owners else None,
            client_count=counts.get(m.id or 0, 0),
        )
        for m, subject, email in found
    ]


def _with_names(
    actor: User, status: str | None, limit: int | None, offset: int
) -> Select[Mailing, str, str]:  # str | None, with the outer joins
    stmt = (
        select(Mailing, Message.subject, User.email)
        .outerjoin(Message, col(Message.id) == Mailing.message_id)
        .outerjoin(User, col(User.id) == Mailing.owner_id)
    )
    return listing(stmt, actor, status, limit, offset)


def list_mailing_rows(
    *,
    session: Session,
    actor: User,
    status: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[MailingRow]:
    """list_mailings with each mailing's subject, client count and (for those who oversee
    everyone's mailings) owner: three queries for the page, whatever its length."""
    found = session.exec(_with_names(actor, status, limit, offset)).all()
    return _rows(session, found, owners=sees_everything(actor, oversight=True))


def get_mailing_row(*, session: Session, actor: User, mailing_id: int) -> MailingRow:
    """get_mailing with its subject, owner's email and client count (the detail page)."""
    mailing = get_mailing(session=session, actor=actor, mailing_id=mailing_id)
    message = session.get(Message, mailing.message_id)
    owner = session.get(User, mailing.owner_id)
    (row,) = _rows(
        session,
        [(mailing, message.subject if message else "", owner.email if owner else "")],
        owners=True,
    )
    return row
