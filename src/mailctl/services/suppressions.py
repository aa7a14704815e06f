"""The suppression list: addresses an owner must never mail, whatever their client rows.

An entry is keyed by a keyed hash of the address (tokens.address_hash) and keeps the address
itself until the person is erased. Runs skip suppressed addresses when they start (the
ledger says why) and the sender checks again, by hash, just before each message goes out.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from mailctl.db import utcnow
from mailctl.errors import Forbidden, Invalid, NotFound
from mailctl.models import Delivery, Mailing, Role, Suppression, SuppressionReason, User
from mailctl.models.delivery import OPEN, SENDING, SKIPPED
from mailctl.services.access import CONTENT_ROLES, acting_owner, owner_scope, require_role
from mailctl.services.validation import clean_email, clean_text
from mailctl.tokens import address_hash

NOTE_MAX = 500


def _reason(value: str) -> str:
    try:
        return SuppressionReason(value).value
    except ValueError:
        choices = ", ".join(r.value for r in SuppressionReason)
        raise Invalid(f"unknown reason {value!r}: use {choices}") from None


def _entry(session: Session, owner_id: int, digest: str) -> Suppression | None:
    return session.exec(
        select(Suppression).where(
            Suppression.owner_id == owner_id, Suppression.email_hash == digest
        )
    ).first()


def suppress_address(
    session: Session, *, owner_id: int, email: str, reason: str, secret: str, note: str = ""
) -> Suppression:
    """Put an address on an owner's list (no actor: also called for an unsubscribe link or a
    bounce). Open ledger rows for it are skipped at once, so nothing queued goes out."""
    key = email.strip().lower()
    digest = address_hash(secret, key)
    entry = _entry(session, owner_id, digest)
    if entry is None:
        entry = Suppression(owner_id=owner_id, email_key=key, email_hash=digest, reason=reason)
    elif entry.removed_at is None:
        # Already blocked: a complaint outranks anything, otherwise the first reason stays.
        if reason == SuppressionReason.complaint.value:
            entry.reason = reason
        session.add(entry)
        _skip_open_rows(session, owner_id, key, entry.reason)
        return entry
    entry.email_key, entry.reason, entry.note = key, reason, note
    entry.created_at, entry.removed_at, entry.removed_note = utcnow(), None, ""
    session.add(entry)
    session.flush()
    _skip_open_rows(session, owner_id, key, reason)
    return entry


def _skip_open_rows(session: Session, owner_id: int, key: str, reason: str) -> None:
    mailings = select(Mailing.id).where(Mailing.owner_id == owner_id)
    session.execute(
        update(Delivery)
        .where(
            col(Delivery.mailing_id).in_(mailings),
            func.lower(Delivery.email) == key,
            col(Delivery.state).in_([s for s in OPEN if s != SENDING]),
        )
        .values(state=SKIPPED, last_reply=f"suppressed ({reason})", next_attempt_at=None)
        .execution_options(synchronize_session=False)
    )


def is_suppressed(session: Session, *, owner_id: int, email: str, secret: str) -> bool:
    entry = _entry(session, owner_id, address_hash(secret, email))
    return entry is not None and entry.removed_at is None


def list_suppressions(
    *, session: Session, actor: User, include_removed: bool = False
) -> Sequence[Suppression]:
    """The actor's list (an admin: everyone's), newest first."""
    require_role(actor, CONTENT_ROLES, "see the suppression list")
    stmt = owner_scope(select(Suppression), Suppression, actor)
    if not include_removed:
        stmt = stmt.where(col(Suppression.removed_at).is_(None))
    return session.exec(stmt.order_by(col(Suppression.created_at).desc())).all()


def add_suppression(
    *,
    session: Session,
    actor: User,
    email: str,
    secret: str,
    reason: str = SuppressionReason.manual.value,
    note: str = "",
    owner_id: int | None = None,
) -> Suppression:
    """Put an address on the actor's own list (an admin: any owner's) by hand."""
    require_role(actor, CONTENT_ROLES, "change the suppression list")
    owner = acting_owner(actor, owner_id, "user not found")
    address = clean_email(email)
    why = _reason(reason)
    text = clean_text(note, field="note", max_len=NOTE_MAX, single_line=True)
    return suppress_address(
        session, owner_id=owner, email=address, reason=why, secret=secret, note=text
    )


def remove_suppression(
    *,
    session: Session,
    actor: User,
    email: str,
    secret: str,
    note: str,
    force: bool = False,
    owner_id: int | None = None,
) -> Suppression:
    """Lift an entry of the actor's own list, saying why. A complaint stays unless an admin
    forces it: mailing someone who reported spam again is what gets a sender blocked."""
    require_role(actor, CONTENT_ROLES, "change the suppression list")
    address = (email or "").strip()
    missing = f"{address} is not on the suppression list"
    owner = acting_owner(actor, owner_id, missing)
    why = clean_text(note, field="reason", max_len=NOTE_MAX, required=True, single_line=True)
    entry = _entry(session, owner, address_hash(secret, address)) if address else None
    if entry is None or entry.removed_at is not None:
        raise NotFound(missing)
    if entry.reason == SuppressionReason.complaint.value:
        if not force:
            raise Forbidden(f"{address} complained; only an admin with --force may lift that")
        if actor.role != Role.admin.value:
            raise Forbidden("only an admin may lift a complaint")
    entry.removed_at, entry.removed_note = utcnow(), why
    session.add(entry)
    return entry
