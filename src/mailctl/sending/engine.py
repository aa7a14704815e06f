"""Deliver ledger rows: claim a batch, send each row once, record every attempt.

The order of writes is what makes a crash lose nothing and send nothing twice:
a row moves to `sending` (compare-and-set on our claim) and commits before its SMTP traffic
starts; its outcome commits together with the next row's move to `sending`. No transaction is
open while the mail server is talking. A row found in `sending` under an expired lease belonged
to a sender that died mid-message: it becomes `unknown`, never resent by itself.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, or_, select, update
from sqlalchemy.engine import Connection, Engine

from mailctl.config import Settings
from mailctl.db import utcnow
from mailctl.models import Client, Delivery, DeliveryAttempt, Mailing, Message
from mailctl.sending.render import HeaderInjection, MessageRenderer, RenderClient
from mailctl.sending.transport import (
    DEFERRED,
    FAILED,
    UNKNOWN,
    AuthRejected,
    Outcome,
    Transport,
    make_transport,
)
from mailctl.tokens import sign

D = Delivery.__table__.c  # type: ignore[attr-defined]
A = DeliveryAttempt.__table__  # type: ignore[attr-defined]
SKIPPED = "skipped"
CLAIMABLE = ("pending", "deferred")


def new_worker_id(kind: str) -> str:
    return f"{kind}:{socket.gethostname()}:{uuid.uuid4().hex[:8]}"


@dataclass
class Summary:
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    unknown: int = 0
    skipped: int = 0
    runs_started: int = 0
    stopped: str | None = None
    mailings: set[int] = field(default_factory=set)
    runs: set[int] = field(default_factory=set)

    def count(self, status: str) -> None:
        setattr(self, status, getattr(self, status) + 1)

    def as_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "deferred": self.deferred,
            "failed": self.failed,
            "unknown": self.unknown,
            "skipped": self.skipped,
            "runs_started": self.runs_started,
            "stopped": self.stopped,
        }


@dataclass(frozen=True)
class Policy:
    batch_size: int
    lease: timedelta
    retry_first: float
    retry_max: float
    lifetime: timedelta
    breaker: int
    from_address: str
    from_name: str
    base_url: str
    secret: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        d = settings.values["delivery"]
        return cls(
            batch_size=int(d["batch_size"]),
            lease=timedelta(seconds=int(d["lease_seconds"])),
            retry_first=float(d["retry_first_seconds"]),
            retry_max=float(d["retry_max_seconds"]),
            lifetime=timedelta(seconds=int(d["retry_lifetime_seconds"])),
            breaker=int(d["circuit_breaker"]),
            from_address=d["from_address"],
            from_name=d["from_name"],
            base_url=settings.base_url(),
            secret=settings.web_secret_key(),
        )

    def backoff(self, attempts: int) -> timedelta:
        return timedelta(seconds=min(self.retry_first * 2 ** max(attempts - 1, 0), self.retry_max))


def unsubscribe_url(policy: Policy, client_id: int) -> str:
    return f"{policy.base_url}/unsubscribe/{sign(policy.secret, 'unsubscribe', client_id)}"


# -- ledger statements ------------------------------------------------------------------------


def recover_stale(conn: Connection, now: datetime) -> int:
    """Rows left in `sending` by a dead sender become `unknown`, with a log row each."""
    with conn.begin():
        rows = conn.execute(
            update(Delivery)
            .where(D.state == "sending", D.lease_until < now)
            .values(
                state=UNKNOWN,
                claimed_by=None,
                lease_until=None,
                last_reply="the sender stopped while this message was in flight",
            )
            .returning(D.id, D.mailing_id, D.run_id, D.email)
        ).all()
        if rows:
            conn.execute(
                insert(A),
                [
                    {
                        "delivery_id": r.id,
                        "mailing_id": r.mailing_id,
                        "run_id": r.run_id,
                        "email": r.email,
                        "attempted_at": now,
                        "status": UNKNOWN,
                        "response": "the sender stopped while this message was in flight",
                    }
                    for r in rows
                ],
            )
    return len(rows)


def claim_batch(
    conn: Connection, *, worker: str, policy: Policy, now: datetime, mailing_id: int | None
) -> list[int]:
    """Take up to batch_size due rows; SKIP LOCKED lets other senders take the next ones."""
    due = (
        select(Delivery.id)
        .join(Mailing, Mailing.id == Delivery.mailing_id)  # type: ignore[arg-type]
        .where(
            D.state.in_(CLAIMABLE),
            or_(D.next_attempt_at.is_(None), D.next_attempt_at <= now),
            or_(D.lease_until.is_(None), D.lease_until < now),
            Mailing.is_enabled == True,  # noqa: E712
        )
        .order_by(D.id)
        .limit(policy.batch_size)
        .with_for_update(skip_locked=True, of=Delivery)
    )
    if mailing_id is not None:
        due = due.where(D.mailing_id == mailing_id)
    with conn.begin():
        ids = conn.execute(
            update(Delivery)
            .where(D.id.in_(due.scalar_subquery()))
            .values(claimed_by=worker, lease_until=now + policy.lease)
            .returning(D.id)
        ).scalars()
        return sorted(ids)


def release(conn: Connection, worker: str) -> None:
    """Give back what we claimed and did not send, for others or for the next pass."""
    with conn.begin():
        conn.execute(
            update(Delivery)
            .where(D.claimed_by == worker, D.state.in_(CLAIMABLE))
            .values(claimed_by=None, lease_until=None)
        )


@dataclass
class _Row:
    id: int
    run_id: int
    mailing_id: int
    client_id: int | None
    email: str
    attempts: int
    first_attempt_at: datetime | None
    full_name: str | None
    unsubscribed: bool
    message_id: int
    subject: str
    body: str
    updated_at: datetime


def _load(conn: Connection, ids: list[int]) -> list[_Row]:
    stmt = (
        select(
            D.id,
            D.run_id,
            D.mailing_id,
            D.client_id,
            D.email,
            D.attempts,
            D.first_attempt_at,
            Client.full_name,
            Client.unsubscribed_at,
            Message.id.label("message_id"),  # type: ignore[union-attr]
            Message.subject,
            Message.body,
            Message.updated_at,
        )
        .select_from(Delivery)
        .join(Mailing, Mailing.id == D.mailing_id)  # type: ignore[arg-type]
        .join(Message, Message.id == Mailing.message_id)  # type: ignore[arg-type]
        .outerjoin(Client, Client.id == D.client_id)  # type: ignore[arg-type]
        .where(D.id.in_(ids))
        .order_by(D.id)
    )
    with conn.begin():
        return [
            _Row(
                id=r.id,
                run_id=r.run_id,
                mailing_id=r.mailing_id,
                client_id=r.client_id,
                email=r.email,
                attempts=r.attempts,
                first_attempt_at=r.first_attempt_at,
                full_name=r.full_name,
                unsubscribed=r.unsubscribed_at is not None,
                message_id=r.message_id,
                subject=r.subject,
                body=r.body,
                updated_at=r.updated_at,
            )
            for r in conn.execute(stmt)
        ]


def _record(conn: Connection, row: _Row, outcome: Outcome, policy: Policy, now: datetime) -> str:
    """Write one attempt's outcome to the ledger and the log; returns the final state."""
    status = outcome.status
    attempts = row.attempts + (0 if status == SKIPPED else 1)
    first = row.first_attempt_at or now
    values: dict[str, Any] = {
        "attempts": attempts,
        "last_attempt_at": now,
        "first_attempt_at": first,
        "last_code": outcome.code,
        "last_reply": outcome.reply,
        "claimed_by": None,
        "lease_until": None,
        "next_attempt_at": None,
    }
    reply = outcome.reply
    if status == DEFERRED:
        if now - first >= policy.lifetime:
            status = FAILED
            reply = f"gave up after {attempts} attempts: {outcome.reply}"
            values["last_reply"] = reply
        else:
            values["next_attempt_at"] = now + policy.backoff(attempts)
    values["state"] = status
    conn.execute(update(Delivery).where(D.id == row.id).values(**values))
    conn.execute(
        insert(A).values(
            delivery_id=row.id,
            mailing_id=row.mailing_id,
            run_id=row.run_id,
            email=row.email,
            attempted_at=now,
            status=status,
            smtp_code=outcome.code,
            response=reply,
        )
    )
    return status


def _mark_sending(
    conn: Connection, row_id: int, worker: str, policy: Policy, now: datetime
) -> bool:
    # Compare-and-set: if our lease ran out and another sender took the row, leave it alone.
    result = conn.execute(
        update(Delivery)
        .where(D.id == row_id, D.claimed_by == worker, D.state.in_(CLAIMABLE))
        .values(state="sending", lease_until=now + policy.lease)
    )
    return result.rowcount == 1


def _renew(conn: Connection, worker: str, policy: Policy, now: datetime) -> None:
    conn.execute(
        update(Delivery)
        .where(D.claimed_by == worker, D.state.in_(CLAIMABLE))
        .values(lease_until=now + policy.lease)
    )


def _note_mailings(conn: Connection, mailing_ids: set[int], error: str | None) -> None:
    if not mailing_ids:
        return
    with conn.begin():
        conn.execute(
            update(Mailing).where(Mailing.id.in_(mailing_ids)).values(last_error=error)  # type: ignore[union-attr]
        )


# -- the sender -----------------------------------------------------------------------------


class Sender:
    """One sender process's loop over the ledger. Thread-safe to stop from a signal handler."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        worker: str,
        transport: Transport | None = None,
        stop: threading.Event | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.engine = engine
        self.policy = Policy.from_settings(settings)
        self.settings = settings
        self.worker = worker
        self._transport = transport
        self.stop = stop or threading.Event()
        self.progress = progress
        self._renderers: dict[tuple[int, datetime], MessageRenderer] = {}

    @property
    def transport(self) -> Transport:
        if self._transport is None:
            self._transport = make_transport(self.settings)
        return self._transport

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def _renderer(self, row: _Row) -> MessageRenderer:
        key = (row.message_id, row.updated_at)
        renderer = self._renderers.get(key)
        if renderer is None:
            renderer = MessageRenderer(
                subject=row.subject,
                body=row.body,
                from_address=self.policy.from_address,
                from_name=self.policy.from_name,
                unsubscribe=True,
            )
            self._renderers[key] = renderer
        return renderer

    def _prepare(self, row: _Row) -> bytes | Outcome:
        if row.client_id is None:
            return Outcome(SKIPPED, None, "the client was deleted before sending")
        if row.unsubscribed:
            return Outcome(SKIPPED, None, "the client unsubscribed")
        try:
            rendered = self._renderer(row).render(
                RenderClient(email=row.email, full_name=row.full_name or ""),
                unsubscribe_url=unsubscribe_url(self.policy, row.client_id),
            )
        except HeaderInjection as exc:
            return Outcome(FAILED, None, f"refused before sending: {exc}")
        except Exception as exc:  # a template that renders for the sample may still fail here
            return Outcome(FAILED, None, f"cannot render the message: {exc}")
        return rendered.data

    def deliver(self, *, mailing_id: int | None = None, summary: Summary | None = None) -> Summary:
        """Send every claimable row (of one mailing, or all) until none is left or we stop."""
        summary = summary or Summary()
        with self.engine.connect() as conn:
            recover_stale(conn, utcnow())
            try:
                while not self.stop.is_set() and summary.stopped is None:
                    ids = claim_batch(
                        conn,
                        worker=self.worker,
                        policy=self.policy,
                        now=utcnow(),
                        mailing_id=mailing_id,
                    )
                    if not ids:
                        break
                    self._send_batch(conn, _load(conn, ids), summary)
            finally:
                release(conn, self.worker)
        return summary

    def _send_batch(self, conn: Connection, rows: list[_Row], summary: Summary) -> None:
        pending: tuple[_Row, Outcome] | None = None
        consecutive_failures = 0
        last_renew = time.monotonic()
        renew_every = self.policy.lease.total_seconds() / 3
        for row in rows:
            if self.stop.is_set():
                break
            prepared = self._prepare(row)
            now = utcnow()
            with conn.begin():
                if pending is not None:
                    self._finish(conn, *pending, summary, now)
                    pending = None
                if time.monotonic() - last_renew > renew_every:
                    _renew(conn, self.worker, self.policy, now)
                    last_renew = time.monotonic()
                if isinstance(prepared, Outcome):
                    self._finish(conn, row, prepared, summary, now)
                    continue
                if not _mark_sending(conn, row.id, self.worker, self.policy, now):
                    continue
            try:
                outcome = self.transport.send(
                    sender=self.policy.from_address, recipient=row.email, data=prepared
                )
            except AuthRejected as exc:
                with conn.begin():
                    # Not the recipient's fault: back to pending, no attempt counted.
                    conn.execute(
                        update(Delivery)
                        .where(D.id == row.id)
                        .values(state="pending", claimed_by=None, lease_until=None)
                    )
                summary.stopped = f"paused: {exc}"
                break
            pending = (row, outcome)
            consecutive_failures = consecutive_failures + 1 if outcome.connection_failure else 0
            if consecutive_failures >= self.policy.breaker:
                summary.stopped = (
                    f"stopped after {consecutive_failures} consecutive connection failures "
                    f"({outcome.reply}); the rest waits for the next pass"
                )
                break
        if pending is not None:
            with conn.begin():
                self._finish(conn, *pending, summary, utcnow())
        # The owner sees why a pass stopped early; a pass that got through clears it.
        touched = {r.mailing_id for r in rows}
        _note_mailings(conn, touched, summary.stopped)

    def _finish(
        self, conn: Connection, row: _Row, outcome: Outcome, summary: Summary, now: datetime
    ) -> None:
        status = _record(conn, row, outcome, self.policy, now)
        summary.count(status)
        summary.mailings.add(row.mailing_id)
        summary.runs.add(row.run_id)
        if self.progress is not None:
            self.progress(status)
