"""Bounces and complaints, whichever way they come (a mailbox, a file, a relay's webhook):
`record_bounce` is the one place that records one and applies its effect, and emits the
owner's `message.bounced` webhook event.

A hard bounce or a complaint puts the address on its owner's suppression list at once; soft
bounces are counted, and `[bounces] soft_limit` of them within `soft_window_days` suppress. The
ledger row the message was sent for keeps `sent` as its state and records the bounce beside it.
Which row: the VERP token of the return path first (sending/verp.py), else the latest message
sent to that address, whoever's it was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from mailctl.config import Settings
from mailctl.db import session_scope, utcnow
from mailctl.errors import Invalid
from mailctl.models import (
    Bounce,
    BounceKind,
    Client,
    Delivery,
    Mailing,
    Role,
    SuppressionReason,
    User,
)
from mailctl.models.bounce import RANK
from mailctl.models.delivery import SENT
from mailctl.sending.verp import Reference, ReturnPath
from mailctl.services.access import require_role
from mailctl.services.bounce_parse import parse_report
from mailctl.services.events import MESSAGE_BOUNCED, emit
from mailctl.services.suppressions import suppress_address
from mailctl.tokens import address_hash

KINDS = tuple(k.value for k in BounceKind)


@dataclass(frozen=True)
class Rules:
    """What record_bounce needs from the settings, built once per import or request."""

    secret: str
    soft_limit: int
    soft_window: timedelta
    return_path: ReturnPath

    @classmethod
    def from_settings(cls, settings: Settings) -> Rules:
        return cls(
            secret=settings.web_secret_key(),
            soft_limit=settings.bounces.soft_limit,
            soft_window=timedelta(days=settings.bounces.soft_window_days),
            return_path=ReturnPath.from_settings(settings),
        )


@dataclass(frozen=True)
class Report:
    """One bounce or complaint for one address, as a DSN, an ARF report or a relay says it."""

    email: str
    kind: str  # hard, soft, complaint
    source: str  # mail, ses, postmark, sendgrid, mailgun, webhook
    ref: str  # the report's own id: the same one recorded twice counts once
    status: str = ""
    reason: str = ""
    reference: Reference | None = None  # the VERP token's row, when the report had one
    received_at: datetime | None = None


@dataclass(frozen=True)
class Recorded:
    outcome: str  # recorded, duplicate, unmatched (no owner ever mailed the address)
    kind: str
    owner_id: int | None = None
    delivery_id: int | None = None
    suppressed: bool = False


def _by_reference(session: Session, ref: Reference) -> tuple[int, Delivery | None, str] | None:
    """(owner, ledger row, address sent to) of a VERP token; None if its mailing is gone."""
    mailing = session.get(Mailing, ref.mailing_id)
    if mailing is None:
        return None
    row = session.exec(
        select(Delivery).where(
            Delivery.mailing_id == ref.mailing_id,
            Delivery.run_id == ref.run_id,
            Delivery.client_id == ref.client_id,
        )
    ).first()
    if row is not None:
        return mailing.owner_id, row, row.email
    client = session.get(Client, ref.client_id)
    if client is not None and client.owner_id == mailing.owner_id:
        return mailing.owner_id, None, client.email
    return None


def _by_address(session: Session, address: str) -> tuple[int, Delivery | None, str] | None:
    """The latest message sent to an address (any owner's), else a client with it."""
    row = session.exec(
        select(Delivery)
        .where(func.lower(Delivery.email) == address, Delivery.state == SENT)
        .order_by(col(Delivery.last_attempt_at).desc(), col(Delivery.id).desc())
        .limit(1)
    ).first()
    if row is not None:
        mailing = session.get(Mailing, row.mailing_id)
        assert mailing is not None  # a ledger row goes with its mailing
        return mailing.owner_id, row, row.email
    client = session.exec(
        select(Client).where(Client.email_key == address).order_by(col(Client.id))
    ).first()
    return (client.owner_id, None, client.email) if client is not None else None


def record_bounce(session: Session, *, report: Report, rules: Rules) -> Recorded:
    """Record one bounce or complaint and apply its effect (no actor: it comes from a mail
    server or a relay, never from a user). Flushes; the caller commits."""
    if report.kind not in KINDS:
        raise Invalid(f"unknown bounce kind {report.kind!r}: use {', '.join(KINDS)}")
    address = report.email.strip().lower()
    target = _by_reference(session, report.reference) if report.reference else None
    if target is None and address:
        target = _by_address(session, address)
    if target is None:
        return Recorded("unmatched", report.kind)
    owner_id, row, sent_to = target
    if sent_to.startswith("erased:"):  # the person was erased: only the report names them
        if not address:
            return Recorded("unmatched", report.kind)
        sent_to = address
    digest = address_hash(rules.secret, sent_to)
    ref = f"{report.source}:{report.ref}:{digest[:16]}"[:200]
    if session.exec(select(Bounce.id).where(Bounce.ref == ref)).first() is not None:
        return Recorded("duplicate", report.kind, owner_id, row.id if row else None)
    now = report.received_at or utcnow()
    session.add(
        Bounce(
            owner_id=owner_id,
            delivery_id=row.id if row else None,
            mailing_id=row.mailing_id if row else None,
            run_id=row.run_id if row else None,
            email_hash=digest,
            kind=report.kind,
            status=report.status[:16],
            reason=report.reason[:1000],
            source=report.source,
            ref=ref,
            received_at=now,
        )
    )
    if row is not None and RANK[report.kind] > RANK.get(row.bounce or "", 0):
        row.bounce, row.bounced_at = report.kind, now
        session.add(row)
    session.flush()
    note = _suppression_note(session, report, owner_id, digest, rules, now)
    if note is not None:
        reason = (
            SuppressionReason.complaint.value
            if report.kind == BounceKind.complaint.value
            else SuppressionReason.bounce.value
        )
        suppress_address(
            session, owner_id=owner_id, email=sent_to, reason=reason, secret=rules.secret, note=note
        )
    # The owner's outgoing webhooks hear of it in this same transaction.
    emit(
        session,
        owner_id,
        MESSAGE_BOUNCED,
        {
            "email": sent_to,
            "kind": report.kind,
            "status": report.status,
            "reason": report.reason,
            "source": report.source,
            "mailing_id": row.mailing_id if row else None,
            "run_id": row.run_id if row else None,
            "client_id": row.client_id if row else None,
            "suppressed": note is not None,
            "received_at": now,
        },
    )
    row_id = row.id if row else None
    return Recorded("recorded", report.kind, owner_id, row_id, suppressed=note is not None)


def _suppression_note(
    session: Session, report: Report, owner_id: int, digest: str, rules: Rules, now: datetime
) -> str | None:
    """Why the address is suppressed now, or None while soft bounces stay under the limit."""
    detail = " ".join(p for p in (report.status, report.reason) if p)
    if report.kind == BounceKind.hard.value:
        return f"hard bounce ({report.source}): {detail}"[:500].rstrip(": ")
    if report.kind == BounceKind.complaint.value:
        return f"complaint ({report.source}): {detail}"[:500].rstrip(": ")
    since = now - rules.soft_window
    # Soft bounces of different messages: a server that warns three times about one slow
    # message ("delayed", then again) has not bounced three of them.
    messages = func.coalesce(col(Bounce.delivery_id), -col(Bounce.id))
    count = session.exec(
        select(func.count(func.distinct(messages))).where(
            Bounce.owner_id == owner_id,
            Bounce.email_hash == digest,
            Bounce.kind == BounceKind.soft.value,
            col(Bounce.received_at) >= since,
        )
    ).one()
    if count < rules.soft_limit:
        return None
    days = rules.soft_window.days
    return f"{count} messages soft-bounced in {days} days, the last: {detail}"[:500].rstrip(": ")


@dataclass
class Tally:
    """What an import or a fetch did, message by message."""

    processed: int = 0
    hard: int = 0
    soft: int = 0
    complaints: int = 0
    ignored: int = 0  # neither a bounce nor a complaint: left alone
    unmatched: int = 0  # a bounce for an address nobody here ever mailed
    duplicates: int = 0  # already recorded (the same report imported again)
    suppressed: int = 0

    def add(self, other: Tally) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def line(self) -> str:
        return (
            f"processed {self.processed}: {self.hard} hard, {self.soft} soft,"
            f" {self.complaints} complaints, {self.ignored} ignored"
            f" ({self.unmatched} unmatched, {self.duplicates} already recorded,"
            f" {self.suppressed} suppressed)"
        )


def process_message(session: Session, *, raw: bytes, rules: Rules, source: str = "mail") -> Tally:
    """Read one message of a bounce mailbox and record what it reports."""
    tally = Tally(processed=1)
    parsed = parse_report(raw)
    if not parsed.findings:
        tally.ignored = 1
        return tally
    reference = rules.return_path.find(parsed.addressed) or rules.return_path.find(parsed.text)
    for finding in parsed.findings:
        result = record_bounce(
            session,
            report=Report(
                email=finding.email,
                kind=finding.kind,
                source=source,
                ref=parsed.ref,
                status=finding.status,
                reason=finding.reason,
                # A token names one row: it belongs to the report's only (or first) address.
                reference=reference if finding is parsed.findings[0] else None,
            ),
            rules=rules,
        )
        _count(tally, result)
    return tally


def _count(tally: Tally, result: Recorded) -> None:
    if result.outcome == "unmatched":
        tally.unmatched += 1
    elif result.outcome == "duplicate":
        tally.duplicates += 1
    if result.outcome != "recorded":
        return
    tally.suppressed += int(result.suppressed)
    if result.kind == BounceKind.hard.value:
        tally.hard += 1
    elif result.kind == BounceKind.soft.value:
        tally.soft += 1
    else:
        tally.complaints += 1


def require_operator(actor: User) -> None:
    """Bounce mailboxes and files hold every owner's bounces: an admin's business."""
    require_role(actor, (Role.admin.value,), "import or fetch bounces")


def import_messages(
    *,
    engine: Engine,
    rules: Rules,
    messages: Iterable[bytes | None],
    committed: Callable[[int], None] | None = None,
) -> Tally:
    """Record each message in a transaction of its own (a crash loses at most the one being
    read; importing again counts nothing twice). `committed(index)` is told after each commit:
    a mailbox may delete that message then, never before. None is a message too large."""
    tally = Tally()
    for index, raw in enumerate(messages):
        if raw is None:
            tally.add(Tally(processed=1, ignored=1))
        else:
            try:
                with session_scope(engine) as session:
                    tally.add(process_message(session, raw=raw, rules=rules))
            except IntegrityError:
                # Another process (a second daemon) recorded the same report meanwhile.
                tally.add(Tally(processed=1, duplicates=1))
        if committed is not None:
            committed(index)
    return tally
