"""Erasure (GDPR art. 17): a person's data removed from everything one owner holds.

The client row goes, with its tags, links and consent records. In the ledger and the attempts
log the address (and any mention of it in the server's replies) becomes `erased:<keyed hash>`,
the same for every row of that person, so counts and reports stay right. The suppression list
keeps only the keyed hash: an erased address that had unsubscribed stays blocked when imported
again, and the address itself is found nowhere in the database. The person's messages in the
local outbox folder, when there is one, are deleted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func
from sqlmodel import Session, col, select

from mailctl.models import Bounce, Delivery, DeliveryAttempt, Mailing, Suppression, User
from mailctl.sending.outbox import erase_from_outbox, outbox_label
from mailctl.services.clients import get_client
from mailctl.tokens import address_hash


@dataclass(frozen=True)
class Erased:
    email_hash: str
    deliveries: int
    attempts: int
    suppressed: bool
    outbox_files: int = 0


def erased_label(digest: str) -> str:
    return f"erased:{digest}"


def _scrub(text: str | None, pattern: re.Pattern[str], label: str) -> str | None:
    return pattern.sub(label, text) if text else text


def erase_client(
    *, session: Session, actor: User, client_id: int, secret: str, outbox_dir: Path | None = None
) -> Erased:
    """Erase one of the actor's clients (an admin: anyone's) everywhere; see the module doc."""
    client = get_client(session=session, actor=actor, client_id=client_id)
    owner_id, key = client.owner_id, client.email_key
    digest = address_hash(secret, key)
    label = erased_label(digest)
    # The address itself, and the form an outbox file name gives it ("written to outbox as ...").
    forms = sorted({key, outbox_label(key)}, key=len, reverse=True)
    pattern = re.compile("|".join(re.escape(f) for f in forms), re.IGNORECASE)
    mailings = select(Mailing.id).where(Mailing.owner_id == owner_id)
    deliveries = session.exec(
        select(Delivery).where(
            col(Delivery.mailing_id).in_(mailings), func.lower(Delivery.email) == key
        )
    ).all()
    for row in deliveries:
        row.email, row.last_reply = label, _scrub(row.last_reply, pattern, label)
        session.add(row)
    attempts = session.exec(
        select(DeliveryAttempt).where(
            col(DeliveryAttempt.mailing_id).in_(mailings), func.lower(DeliveryAttempt.email) == key
        )
    ).all()
    for attempt in attempts:
        attempt.email, attempt.response = label, _scrub(attempt.response, pattern, label)
        session.add(attempt)
    entry = session.exec(
        select(Suppression).where(
            Suppression.owner_id == owner_id, Suppression.email_hash == digest
        )
    ).first()
    if entry is not None:
        entry.email_key = None
        entry.note = _scrub(entry.note, pattern, label) or ""
        entry.removed_note = _scrub(entry.removed_note, pattern, label) or ""
        session.add(entry)
    # The bounce log keeps only the hash; a diagnostic may still quote the address.
    for bounce in session.exec(
        select(Bounce).where(Bounce.owner_id == owner_id, Bounce.email_hash == digest)
    ).all():
        bounce.reason = _scrub(bounce.reason, pattern, label) or ""
        session.add(bounce)
    session.delete(client)
    session.flush()
    files = erase_from_outbox(outbox_dir, key) if outbox_dir is not None else 0
    return Erased(
        email_hash=digest,
        deliveries=len(deliveries),
        attempts=len(attempts),
        suppressed=entry is not None and entry.removed_at is None,
        outbox_files=files,
    )
