"""The ledger's statements: claim a batch, mark a row `sending`, record an outcome, recover.

The order of writes is what makes a crash lose nothing and send nothing twice:
a row moves to `sending` (compare-and-set on our claim) and commits before its SMTP traffic
starts; its outcome commits together with the next row's move to `sending`. No transaction is
open while the mail server is talking. A row found in `sending` under an expired lease belonged
to a sender that died mid-message: it becomes `unknown`, never resent by itself.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, bindparam, case, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlmodel import col

from mailctl.db import dbapi_cursor
from mailctl.models import (
    Client,
    Delivery,
    DeliveryAttempt,
    Layout,
    Mailing,
    Message,
    Suppression,
)
from mailctl.models.delivery import CLAIMABLE, DEFERRED, PENDING, SENDING, UNKNOWN
from mailctl.sending.policy import Policy
from mailctl.sending.transport import Outcome
from mailctl.tokens import address_hash

DT = Delivery.metadata.tables["deliveries"]
D = DT.c
A = DeliveryAttempt.metadata.tables["delivery_attempts"]
M = Message.metadata.tables["messages"]
_CRASHED = "the sender stopped while this message was in flight"


def new_worker_id(kind: str) -> str:
    return f"{kind}:{socket.gethostname()}:{uuid.uuid4().hex[:8]}"


def _claimable() -> dict[str, str]:
    # The claimable states as bind values: the statement is compiled once, with no literals.
    return {f"p_claimable{i}": state for i, state in enumerate(CLAIMABLE)}


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


class Statements:
    """The hot loop's statements: mark one row `sending`, record one outcome and its log row."""

    def __init__(self, dialect: Any) -> None:
        self.mark = _Prepared(
            update(DT)
            .where(
                D.id == bindparam("p_id"),
                D.claimed_by == bindparam("p_worker"),
                D.state.in_([bindparam(f"p_claimable{i}") for i in range(len(CLAIMABLE))]),
            )
            .values(state=SENDING, lease_until=bindparam("p_lease")),
            dialect,
        )
        self.mark.defaults.update(_claimable())
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
                D.state.in_([bindparam(f"p_claimable{i}") for i in range(len(CLAIMABLE))]),
            )
            .values(lease_until=bindparam("p_lease")),
            dialect,
        )
        self.renew.defaults.update(_claimable())
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
                server=bindparam("p_server"),
            ),
            dialect,
        )


def recover_stale(conn: Connection, now: datetime) -> int:
    """Rows left in `sending` by a dead sender become `unknown`, with a log row each."""
    with conn.begin():
        rows = conn.execute(
            update(Delivery)
            .where(D.state == SENDING, D.lease_until < now)
            .values(state=UNKNOWN, claimed_by=None, lease_until=None, last_reply=_CRASHED)
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
                        "response": _CRASHED,
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
    retry_ids: list[int] | None = None,
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
        # Rows a server throttled in this pass (`retry_ids`) may go again once due.
        again = [D.id.in_(retry_ids)] if retry_ids else []
        due = due.where(or_(D.last_attempt_at.is_(None), D.last_attempt_at < tried_before, *again))
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
class LedgerRow:
    """A claimed row with what sending it needs; its message is `message_id` as of
    `message_version` (content is loaded once per version, see `load_message`)."""

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
    message_version: datetime
    # Why the mailing's last pass stopped early, if it did (the breaker starts half-open).
    mailing_error: str | None = None
    attrs: dict[str, str] = field(default_factory=dict)  # the client's custom fields
    suppressed: str | None = None  # the reason, when the owner's list has the address


def load_rows(conn: Connection, ids: list[int], secret: str) -> list[LedgerRow]:
    """The claimed rows, each with the suppression list checked for its address by keyed
    hash (`secret` keys it), so an address suppressed after the run started, or erased and
    imported again, is never mailed."""
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
            M.c.id.label("message_id"),
            M.c.updated_at.label("message_version"),
            col(Mailing.last_error),
            col(Mailing.owner_id),
        )
        .select_from(Delivery)
        .join(Mailing, col(Mailing.id) == D.mailing_id)
        .join(M, M.c.id == Mailing.message_id)
        .outerjoin(Client, col(Client.id) == D.client_id)
        .where(D.id.in_(ids))
        .order_by(D.id)
    )
    with conn.begin():
        found = list(conn.execute(stmt))
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
            LedgerRow(
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
                message_version=r.message_version,
                mailing_error=r.last_error,
                attrs=r.attrs or {},
                suppressed=blocked.get((r.owner_id, hashes[r.id])),
            )
            for r in found
        ]


def load_message(conn: Connection, message_id: int) -> Message | None:
    """The whole Message row, whatever columns it has: what to send is the renderer's
    business (MessageContent.of), not the ledger's."""
    with conn.begin():
        found = conn.execute(select(M).where(M.c.id == message_id)).mappings().first()
    return None if found is None else Message(**found)


def load_layout(conn: Connection, layout_id: int | None) -> Layout | None:
    """A message's layout (None: the default one); loaded with the message, once per version."""
    if layout_id is None:
        return None
    table = Layout.__table__  # type: ignore[attr-defined]
    with conn.begin():
        found = conn.execute(select(table).where(table.c.id == layout_id)).mappings().first()
    return None if found is None else Layout(**found)


def record(
    conn: Connection,
    row: LedgerRow,
    outcome: Outcome,
    policy: Policy,
    now: datetime,
    statements: Statements | None = None,
    worker: str = "",
) -> str:
    """Write one attempt's outcome to the ledger and the log; returns the final state."""
    statements = statements or Statements(conn.dialect)
    cursor = dbapi_cursor(conn)
    verdict = policy.judge(outcome, attempts=row.attempts, first=row.first_attempt_at, now=now)
    updated = statements.outcome.run(
        cursor,
        p_worker=worker,
        p_id=row.id,
        p_state=verdict.status,
        p_attempts=verdict.attempts,
        p_now=now,
        p_first=verdict.first_attempt_at,
        p_code=verdict.code,
        p_reply=verdict.reply,
        p_next=verdict.next_attempt_at,
    )
    if not updated:
        # The row was taken over or deleted (its mailing with it): the attempt still goes in
        # the log while its row exists; the ledger row is left to whoever holds it now.
        statements.exists.run(
            cursor, p_id=row.id, p_state=verdict.status, p_attempts=verdict.attempts, p_now=now
        )
        found = cursor.fetchone()
        if found is None or found[1]:
            return verdict.status
    statements.log.run(
        cursor,
        p_id=row.id,
        p_mailing=row.mailing_id,
        p_run=row.run_id,
        p_email=row.email,
        p_now=now,
        p_state=verdict.status,
        p_code=verdict.code,
        p_reply=verdict.reply,
        p_server=outcome.server,
    )
    return verdict.status


def mark_sending(
    conn: Connection,
    row_id: int,
    worker: str,
    policy: Policy,
    now: datetime,
    statements: Statements | None = None,
) -> bool:
    # Compare-and-set: if our lease ran out and another sender took the row, leave it alone.
    statements = statements or Statements(conn.dialect)
    count = statements.mark.run(
        dbapi_cursor(conn), p_id=row_id, p_worker=worker, p_lease=now + policy.in_flight
    )
    return count == 1


def renew(
    conn: Connection, worker: str, policy: Policy, now: datetime, statements: Statements
) -> None:
    statements.renew.run(dbapi_cursor(conn), p_worker=worker, p_lease=now + policy.lease)


def note_mailings(
    conn: Connection,
    mailing_ids: set[int],
    error: str | None,
    quota: tuple[str, float] | None = None,
) -> None:
    """Why the pass stopped early, or which server's quota it waits for (not an error)."""
    if not mailing_ids:
        return
    values: dict[str, Any] = {"last_error": error, "quota_server": None, "quota_until": None}
    if quota is not None:
        server, until = quota
        values = {
            "last_error": None,
            "quota_server": server,
            "quota_until": datetime.fromtimestamp(until, UTC),
        }
    with conn.begin():
        conn.execute(update(Mailing).where(col(Mailing.id).in_(mailing_ids)).values(**values))


def put_back(conn: Connection, row_id: int) -> None:
    """A row that could not go for a reason not its own (the login was refused, a quota):
    back as it was (pending, or deferred if tried before), no attempt counted."""
    with conn.begin():
        conn.execute(
            update(Delivery)
            .where(D.id == row_id)
            .values(
                state=case((D.attempts > 0, DEFERRED), else_=PENDING),
                claimed_by=None,
                lease_until=None,
            )
        )
