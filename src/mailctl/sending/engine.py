"""Deliver ledger rows: claim a batch, send each row once, record every attempt.

The order of writes is what makes a crash lose nothing and send nothing twice:
a row moves to `sending` (compare-and-set on our claim) and commits before its SMTP traffic
starts; its outcome commits together with the next row's move to `sending`. No transaction is
open while the mail server is talking. A row found in `sending` under an expired lease belonged
to a sender that died mid-message: it becomes `unknown`, never resent by itself.
"""

from __future__ import annotations

import hmac
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import and_, bindparam, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import col

from mailctl.config import Settings
from mailctl.db import dbapi_cursor, raw_write, utcnow
from mailctl.models import Client, Delivery, DeliveryAttempt, Mailing, Message, Suppression
from mailctl.sending.breaker import Breaker
from mailctl.sending.budget import RenderLimits
from mailctl.sending.render import (
    Attrs,
    HeaderInjection,
    MessageRenderer,
    RenderClient,
    RenderFailed,
)
from mailctl.sending.transport import (
    DEFERRED,
    FAILED,
    UNKNOWN,
    AuthRejected,
    Outcome,
    Transport,
    make_transport,
)
from mailctl.tokens import address_hash, sign

DT = Delivery.metadata.tables["deliveries"]
D = DT.c
A = DeliveryAttempt.metadata.tables["delivery_attempts"]
SKIPPED = "skipped"
CLAIMABLE = ("pending", "deferred")


@dataclass(frozen=True)
class InFlight:
    """The message a sender is waiting on the mail server for (a stop waits for it)."""

    email: str
    mailing_id: int
    until: float  # time.monotonic() by which the attempt's deadline ends it

    def describe(self) -> str:
        left = max(0.0, self.until - time.monotonic())
        return (
            f"the mail server's answer for the message to {self.email} (mailing"
            f" {self.mailing_id}), at most {left:.0f}s more (delivery.attempt_deadline_seconds)"
        )


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

    @property
    def paused(self) -> bool:
        """Stopped because the server refused our login: the operator must act."""
        return bool(self.stopped and self.stopped.startswith("paused:"))

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
    # How long a row may stay `sending`: the whole attempt deadline, twice, so that a send
    # that is still within its deadline is never taken for a dead sender's.
    in_flight: timedelta
    retry_first: float
    retry_max: float
    lifetime: timedelta
    breaker: int
    attempt_deadline: float
    from_address: str
    from_name: str
    base_url: str
    secret: str
    limits: RenderLimits

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        d = settings.values["delivery"]
        return cls(
            batch_size=int(d["batch_size"]),
            lease=timedelta(seconds=int(d["lease_seconds"])),
            in_flight=timedelta(
                seconds=max(int(d["lease_seconds"]), 2 * float(d["attempt_deadline_seconds"]))
            ),
            retry_first=float(d["retry_first_seconds"]),
            retry_max=float(d["retry_max_seconds"]),
            lifetime=timedelta(seconds=int(d["retry_lifetime_seconds"])),
            breaker=int(d["circuit_breaker"]),
            attempt_deadline=float(d["attempt_deadline_seconds"]),
            from_address=d["from_address"],
            from_name=d["from_name"],
            base_url=settings.base_url(),
            secret=settings.web_secret_key(),
            limits=RenderLimits.from_settings(settings),
        )

    def backoff(self, attempts: int) -> timedelta:
        return timedelta(seconds=min(self.retry_first * 2 ** max(attempts - 1, 0), self.retry_max))


def unsubscribe_url(policy: Policy, client_id: int) -> str:
    return f"{policy.base_url}/unsubscribe/{sign(policy.secret, 'unsubscribe', client_id)}"


class _UnsubscribeLinks:
    """The same links as `unsubscribe_url`, at a tenth of the cost.

    `tokens.sign` builds a serializer, derives its key and tries zlib on every call: about
    80 us, a quarter of the budget of a message. Here the key is derived once; the token
    (`tokens.unsign` reads it, a test checks) is itsdangerous' own timestamped format.
    """

    def __init__(self, policy: Policy) -> None:
        from itsdangerous import URLSafeTimedSerializer
        from itsdangerous.signer import HMACAlgorithm

        serializer = URLSafeTimedSerializer(policy.secret, salt="mailctl.unsubscribe")
        self._signer = serializer.make_signer()
        self._key = self._signer.derive_key()
        algorithm = self._signer.algorithm
        if not isinstance(algorithm, HMACAlgorithm):  # itsdangerous' default; the token needs it
            raise TypeError("unsubscribe links are signed with HMAC")
        self._digest = algorithm.digest_method
        self._prefix = f"{policy.base_url}/unsubscribe/"
        self._second = -1
        self._stamp = b""

    def __call__(self, client_id: int) -> str:
        from itsdangerous.encoding import base64_encode, int_to_bytes

        now = int(time.time())
        if now != self._second:
            self._second, self._stamp = now, base64_encode(int_to_bytes(now))
        sep = self._signer.sep
        # An int's JSON never compresses, so the payload is its plain base64.
        value = base64_encode(str(int(client_id)).encode()) + sep + self._stamp
        # hmac.digest: what the signer's algorithm computes, in one call.
        signature = base64_encode(hmac.digest(self._key, value, self._digest))
        return self._prefix + (value + sep + signature).decode("ascii")


class _Prepared:
    """A statement compiled once and run below the ORM: the per-message loop runs three of
    them for every recipient, and building and caching them each time cost more than the SMTP
    traffic. Type conversions (UTC datetimes) still go through each column's bind processor.
    """

    def __init__(self, stmt: Any, dialect: Any) -> None:
        compiled = stmt.compile(dialect=dialect)
        dbapi = getattr(dialect, "dbapi", None)
        self.dbapi_error: type[Exception] = dbapi.Error if dbapi is not None else Exception
        self.sql = str(compiled)
        self.defaults = dict(compiled.params)
        self.order = list(compiled.positiontup or ()) if compiled.positional else None
        self.processors: dict[str, Callable[[Any], Any]] = {}
        for name, bind in compiled.binds.items():
            proc = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if proc is not None:
                self.processors[name] = proc

    def params(self, values: dict[str, Any]) -> Any:
        merged = self.defaults | values
        procs = self.processors
        if self.order is None:
            return {k: procs[k](v) if k in procs else v for k, v in merged.items()}
        return [procs[name](merged[name]) if name in procs else merged[name] for name in self.order]

    def run(self, cursor: Any, **values: Any) -> int:
        """Execute on a DBAPI cursor inside `conn.begin()` or `raw_write()`; the rowcount."""
        params = self.params(values)
        try:
            cursor.execute(self.sql, params)
        except self.dbapi_error as exc:
            # Keep the errors adapters know how to report (one line, no traceback).
            raise DBAPIError.instance(self.sql, params, exc, self.dbapi_error) from exc
        return int(cursor.rowcount)


class _Statements:
    """The hot loop's statements: mark one row `sending`, record one outcome and its log row."""

    def __init__(self, dialect: Any) -> None:
        self.mark = _Prepared(
            update(DT)
            .where(
                D.id == bindparam("p_id"),
                D.claimed_by == bindparam("p_worker"),
                D.state.in_([bindparam("p_pending"), bindparam("p_deferred")]),
            )
            .values(state="sending", lease_until=bindparam("p_lease")),
            dialect,
        )
        self.mark.defaults.update(p_pending="pending", p_deferred="deferred")
        # Only while the row is still ours, or was given up as `unknown` by someone who
        # thought we had died (then our late answer is the truth). A row re-queued by an
        # operator or claimed by another sender is theirs now.
        self.outcome = _Prepared(
            update(DT)
            .where(
                D.id == bindparam("p_id"),
                or_(
                    D.claimed_by == bindparam("p_worker"),
                    and_(D.state == bindparam("p_unknown"), D.claimed_by.is_(None)),
                ),
            )
            .values(
                state=bindparam("p_state"),
                attempts=bindparam("p_attempts"),
                last_attempt_at=bindparam("p_now"),
                first_attempt_at=bindparam("p_first"),
                last_code=bindparam("p_code"),
                last_reply=bindparam("p_reply"),
                claimed_by=None,
                lease_until=None,
                next_attempt_at=bindparam("p_next"),
            ),
            dialect,
        )
        self.outcome.defaults.update(p_unknown=UNKNOWN)
        # Whether the row still exists, and whether it already holds this very outcome (a
        # commit that reported an error yet went through, recorded again after the error).
        self.exists = _Prepared(
            select(
                D.id,
                and_(
                    D.state == bindparam("p_state"),
                    D.attempts == bindparam("p_attempts"),
                    D.last_attempt_at == bindparam("p_now"),
                    D.claimed_by.is_(None),
                ),
            ).where(D.id == bindparam("p_id")),
            dialect,
        )
        # Claimed rows not yet sent keep their lease while a long batch goes on.
        self.renew = _Prepared(
            update(DT)
            .where(
                D.claimed_by == bindparam("p_worker"),
                D.state.in_([bindparam("p_pending"), bindparam("p_deferred")]),
            )
            .values(lease_until=bindparam("p_lease")),
            dialect,
        )
        self.renew.defaults.update(p_pending="pending", p_deferred="deferred")
        self.log = _Prepared(
            insert(A).values(
                delivery_id=bindparam("p_id"),
                mailing_id=bindparam("p_mailing"),
                run_id=bindparam("p_run"),
                email=bindparam("p_email"),
                attempted_at=bindparam("p_now"),
                status=bindparam("p_state"),
                smtp_code=bindparam("p_code"),
                response=bindparam("p_reply"),
            ),
            dialect,
        )


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
    conn: Connection,
    *,
    worker: str,
    policy: Policy,
    now: datetime,
    mailing_id: int | None,
    tried_before: datetime | None = None,
) -> list[int]:
    """Take up to batch_size due rows; SKIP LOCKED lets other senders take the next ones.

    With `tried_before`, a row attempted since then is left for a later pass: a pass tries each
    row once, so a short back-off cannot keep one pass retrying against a refusing server.
    """
    due = (
        select(D.id)
        .join(Mailing, col(Mailing.id) == D.mailing_id)
        .where(
            D.state.in_(CLAIMABLE),
            or_(D.next_attempt_at.is_(None), D.next_attempt_at <= now),
            or_(D.lease_until.is_(None), D.lease_until < now),
            col(Mailing.is_enabled) == True,  # noqa: E712
        )
        .order_by(D.id)
        .limit(policy.batch_size)
        .with_for_update(skip_locked=True, of=Delivery)
    )
    if mailing_id is not None:
        due = due.where(D.mailing_id == mailing_id)
    if tried_before is not None:
        due = due.where(or_(D.last_attempt_at.is_(None), D.last_attempt_at < tried_before))
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
    attrs: dict[str, str]
    unsubscribed: bool
    message_id: int
    subject: str
    body: str
    updated_at: datetime
    mailing_error: str | None = None
    suppressed: str | None = None  # the reason, when the owner's list has the address


def _load(conn: Connection, ids: list[int], secret: str) -> list[_Row]:
    stmt = (
        select(
            D.id,
            D.run_id,
            D.mailing_id,
            D.client_id,
            D.email,
            D.attempts,
            D.first_attempt_at,
            col(Client.full_name),
            col(Client.attrs),
            col(Client.unsubscribed_at),
            col(Message.id).label("message_id"),
            col(Message.subject),
            col(Message.body),
            col(Message.updated_at),
            col(Mailing.last_error),
            col(Mailing.owner_id),
        )
        .select_from(Delivery)
        .join(Mailing, col(Mailing.id) == D.mailing_id)
        .join(Message, col(Message.id) == Mailing.message_id)
        .outerjoin(Client, col(Client.id) == D.client_id)
        .where(D.id.in_(ids))
        .order_by(D.id)
    )
    with conn.begin():
        found = list(conn.execute(stmt))
        # Checked again just before sending, by keyed hash, so an address suppressed after
        # the run started, or erased and imported again, is still never mailed.
        hashes = {r.id: address_hash(secret, r.email) for r in found}
        blocked = {
            (e.owner_id, e.email_hash): e.reason
            for e in conn.execute(
                select(
                    col(Suppression.owner_id), col(Suppression.email_hash), col(Suppression.reason)
                ).where(
                    col(Suppression.email_hash).in_(set(hashes.values())),
                    col(Suppression.removed_at).is_(None),
                )
            )
        }
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
                attrs=r.attrs or {},
                unsubscribed=r.unsubscribed_at is not None,
                message_id=r.message_id,
                subject=r.subject,
                body=r.body,
                updated_at=r.updated_at,
                mailing_error=r.last_error,
                suppressed=blocked.get((r.owner_id, hashes[r.id])),
            )
            for r in found
        ]


def _record(
    conn: Connection,
    row: _Row,
    outcome: Outcome,
    policy: Policy,
    now: datetime,
    statements: _Statements | None = None,
    worker: str = "",
) -> str:
    """Write one attempt's outcome to the ledger and the log; returns the final state."""
    statements = statements or _Statements(conn.dialect)
    cursor = dbapi_cursor(conn)
    status = outcome.status
    attempts = row.attempts + (0 if status == SKIPPED else 1)
    first = row.first_attempt_at or now
    reply = outcome.reply
    next_at = None
    if status == DEFERRED:
        if now - first >= policy.lifetime:
            status = FAILED
            reply = f"gave up after {attempts} attempts: {outcome.reply}"
        else:
            next_at = now + policy.backoff(attempts)
    updated = statements.outcome.run(
        cursor,
        p_worker=worker,
        p_id=row.id,
        p_state=status,
        p_attempts=attempts,
        p_now=now,
        p_first=first,
        p_code=outcome.code,
        p_reply=reply,
        p_next=next_at,
    )
    if not updated:
        # The row was taken over or deleted (its mailing with it): the attempt still goes in
        # the log while its row exists; the ledger row is left to whoever holds it now.
        statements.exists.run(cursor, p_id=row.id, p_state=status, p_attempts=attempts, p_now=now)
        found = cursor.fetchone()
        if found is None or found[1]:
            return status
    statements.log.run(
        cursor,
        p_id=row.id,
        p_mailing=row.mailing_id,
        p_run=row.run_id,
        p_email=row.email,
        p_now=now,
        p_state=status,
        p_code=outcome.code,
        p_reply=reply,
    )
    return status


def _mark_sending(
    conn: Connection,
    row_id: int,
    worker: str,
    policy: Policy,
    now: datetime,
    statements: _Statements | None = None,
) -> bool:
    # Compare-and-set: if our lease ran out and another sender took the row, leave it alone.
    statements = statements or _Statements(conn.dialect)
    count = statements.mark.run(
        dbapi_cursor(conn), p_id=row_id, p_worker=worker, p_lease=now + policy.in_flight
    )
    return count == 1


def _renew(
    conn: Connection, worker: str, policy: Policy, now: datetime, statements: _Statements
) -> None:
    statements.renew.run(dbapi_cursor(conn), p_worker=worker, p_lease=now + policy.lease)


def _note_mailings(conn: Connection, mailing_ids: set[int], error: str | None) -> None:
    if not mailing_ids:
        return
    with conn.begin():
        conn.execute(
            update(Mailing).where(col(Mailing.id).in_(mailing_ids)).values(last_error=error)
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
        self.in_flight: InFlight | None = None
        self._breaker = Breaker(self.policy.breaker)
        self._links = _UnsubscribeLinks(self.policy)
        self._statements = _Statements(engine.dialect)

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
                limits=self.policy.limits,
            )
            self._renderers[key] = renderer
        return renderer

    def _prepare(self, row: _Row) -> bytes | Outcome:
        if row.client_id is None:
            return Outcome(SKIPPED, None, "the client was deleted before sending")
        if row.suppressed is not None:
            return Outcome(SKIPPED, None, f"suppressed ({row.suppressed})")
        if row.unsubscribed:
            return Outcome(SKIPPED, None, "the client unsubscribed")
        if not row.email.isascii():
            # Stored before addresses were kept in ASCII form: no server would take it, and
            # trying would look like a connection failure to the circuit breaker.
            return Outcome(FAILED, None, "refused before sending: the address is not ASCII")
        try:
            rendered = self._renderer(row).render(
                RenderClient(
                    email=row.email, full_name=row.full_name or "", attrs=Attrs(row.attrs)
                ),
                unsubscribe_url=self._links(row.client_id),
            )
        except (HeaderInjection, RenderFailed) as exc:  # a budget exceeded, a broken header
            return Outcome(FAILED, None, f"refused before sending: {exc}")
        except Exception as exc:  # a template that renders for the sample may still fail here
            return Outcome(FAILED, None, f"cannot render the message: {exc}")
        return rendered.data

    def _prepare_ahead(self, row: _Row | None, ahead: dict[int, bytes | Outcome]) -> None:
        if row is None:
            return
        # Never raise into the transport: that would pin this error on the message in flight.
        # `_prepare` sorts every rendering failure into an Outcome; anything else that slips
        # through leaves the row to be prepared again in its own turn, where the error counts.
        try:
            ahead[row.id] = self._prepare(row)
        except Exception:
            ahead.pop(row.id, None)

    def deliver(self, *, mailing_id: int | None = None, summary: Summary | None = None) -> Summary:
        """Send every claimable row (of one mailing, or all) until none is left or we stop."""
        summary = summary or Summary()
        self._breaker = Breaker(self.policy.breaker)
        with self.engine.connect() as conn:
            started = utcnow()
            recover_stale(conn, started)
            try:
                while not self.stop.is_set() and summary.stopped is None:
                    ids = claim_batch(
                        conn,
                        worker=self.worker,
                        policy=self.policy,
                        now=utcnow(),
                        mailing_id=mailing_id,
                        tried_before=started,
                    )
                    if not ids:
                        break
                    self._send_batch(conn, _load(conn, ids, self.policy.secret), summary)
            finally:
                release(conn, self.worker)
        return summary

    def _send_batch(self, conn: Connection, rows: list[_Row], summary: Summary) -> None:
        pending: tuple[_Row, Outcome] | None = None
        last_renew = time.monotonic()
        renew_every = self.policy.lease.total_seconds() / 3
        # The next row's message, rendered while the server was busy with this one.
        ahead: dict[int, bytes | Outcome] = {}
        self._breaker.probe(r.mailing_error for r in rows)
        for index, row in enumerate(rows):
            if self.stop.is_set():
                break
            prepared = ahead.pop(row.id) if row.id in ahead else self._prepare(row)
            following = rows[index + 1] if index + 1 < len(rows) else None
            now = utcnow()
            recorded: list[tuple[_Row, str]] = []
            try:
                with raw_write(conn):
                    if pending is not None:
                        recorded.append((pending[0], self._record(conn, *pending, now)))
                    if time.monotonic() - last_renew > renew_every:
                        _renew(conn, self.worker, self.policy, now, self._statements)
                        last_renew = time.monotonic()
                    if isinstance(prepared, Outcome):
                        recorded.append((row, self._record(conn, row, prepared, now)))
                        marked = False
                    else:
                        marked = _mark_sending(
                            conn, row.id, self.worker, self.policy, now, self._statements
                        )
            except DBAPIError:
                # The last outcome rode on this transaction: a message that certainly went
                # out must not end up `unknown` because the next row could not be marked.
                if pending is not None:
                    # The same time: if that commit did go through, this is seen as done.
                    self._finish(conn, *pending, summary, now)
                raise
            for done, status in recorded:  # counted once committed
                self._count(done, status, summary)
            pending = None
            if not marked:
                continue
            assert isinstance(prepared, bytes)  # an Outcome was recorded above, unmarked
            self.in_flight = InFlight(
                row.email, row.mailing_id, time.monotonic() + self.policy.attempt_deadline
            )
            try:
                outcome = self.transport.send(
                    sender=self.policy.from_address,
                    recipient=row.email,
                    data=prepared,
                    meanwhile=partial(self._prepare_ahead, following, ahead),
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
            finally:
                self.in_flight = None
            pending = (row, outcome)
            # Counted across batches: a dead server trips the breaker wherever a batch ends.
            stop = self._breaker.record(outcome)
            if stop is not None:
                summary.stopped = stop
                break
        if pending is not None:
            self._finish(conn, *pending, summary)
        # The owner sees why a pass stopped early; a pass that got through clears it.
        touched = {r.mailing_id for r in rows}
        _note_mailings(conn, touched, summary.stopped)

    def _record(self, conn: Connection, row: _Row, outcome: Outcome, now: datetime) -> str:
        return _record(conn, row, outcome, self.policy, now, self._statements, self.worker)

    def _count(self, row: _Row, status: str, summary: Summary) -> None:
        summary.count(status)
        summary.mailings.add(row.mailing_id)
        summary.runs.add(row.run_id)
        if self.progress is not None:
            self.progress(status)

    def _finish(
        self,
        conn: Connection,
        row: _Row,
        outcome: Outcome,
        summary: Summary,
        now: datetime | None = None,
    ) -> None:
        """Record one outcome in a transaction of its own, and count it."""
        with conn.begin():
            status = self._record(conn, row, outcome, now or utcnow())
        self._count(row, status, summary)
