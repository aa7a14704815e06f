"""The sender loop: claim a batch, send each row once, record every attempt.

Its parts live beside it: the ledger's statements (ledger.py), the decisions on retries and
stopping (policy.py), the message bytes (render.py), the links in them (links.py) and the
wire (transport.py). The loop only orders them; ledger.py says why the order is crash-safe.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from mailctl.config import Settings
from mailctl.db import raw_write, utcnow
from mailctl.models.delivery import FAILED, SKIPPED
from mailctl.sending import ledger
from mailctl.sending.budget import RenderLimits
from mailctl.sending.ledger import LedgerRow, Statements
from mailctl.sending.links import FastUnsubscribeLinks, FastViewLinks, Links
from mailctl.sending.mime import HeaderInjection
from mailctl.sending.policy import Breaker, Policy, Summary
from mailctl.sending.render import MessageContent, MessageRenderer
from mailctl.sending.templates import RenderClient, RenderFailed
from mailctl.sending.transport import Outcome, SetupError, Transport, make_transport

log = logging.getLogger(__name__)
_GONE = Outcome(SKIPPED, None, "the message was deleted before sending")


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


def _unrenderable(exc: Exception) -> Outcome:
    if isinstance(exc, HeaderInjection | RenderFailed):  # a budget exceeded, a broken header
        return Outcome(FAILED, None, f"refused before sending: {exc}")
    return Outcome(FAILED, None, f"cannot render the message: {exc}")


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
        self.from_address = settings.delivery.from_address
        self.from_name = settings.delivery.from_name
        self.limits = RenderLimits.from_settings(settings)
        self._transport = transport
        self.stop = stop or threading.Event()
        self.progress = progress
        # One renderer per message version (an edit mid-run is picked up by the next batch),
        # or the outcome of every row of a version that cannot be rendered at all.
        self._renderers: dict[tuple[int, datetime], MessageRenderer | Outcome] = {}
        self.in_flight: InFlight | None = None
        self._breaker = Breaker(self.policy.breaker)
        self._links = FastUnsubscribeLinks(Links.from_settings(settings))
        self._view_links = FastViewLinks(Links.from_settings(settings))
        self._statements = Statements(engine.dialect)

    @property
    def transport(self) -> Transport:
        if self._transport is None:
            self._transport = make_transport(self.settings)
        return self._transport

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def _load_renderers(self, conn: Connection, rows: list[LedgerRow]) -> None:
        """Before the batch's SMTP traffic: no query runs while the server is talking."""
        for row in rows:
            key = (row.message_id, row.message_version)
            if key in self._renderers:
                continue
            message = ledger.load_message(conn, row.message_id)
            if message is None:
                self._renderers[key] = _GONE
                continue
            try:
                self._renderers[key] = MessageRenderer(
                    MessageContent.of(message, ledger.load_layout(conn, message.layout_id)),
                    from_address=self.from_address,
                    from_name=self.from_name,
                    unsubscribe=True,
                    limits=self.limits,
                    postal_address=self.settings.delivery.postal_address,
                )
            except Exception as exc:  # saved before today's checks: each row says why
                self._renderers[key] = _unrenderable(exc)

    def _prepare(self, row: LedgerRow) -> bytes | Outcome:
        if row.client_id is None:
            return Outcome(SKIPPED, None, "the client was deleted before sending")
        if row.unsubscribed:
            return Outcome(SKIPPED, None, "the client unsubscribed")
        if not row.email.isascii():
            # Stored before addresses were kept in ASCII form: no server would take it, and
            # trying would look like a connection failure to the circuit breaker.
            return Outcome(FAILED, None, "refused before sending: the address is not ASCII")
        renderer = self._renderers.get((row.message_id, row.message_version), _GONE)
        if isinstance(renderer, Outcome):
            return renderer
        try:
            rendered = renderer.render(
                RenderClient(email=row.email, full_name=row.full_name or ""),
                unsubscribe_url=self._links(row.client_id),
                web_url=self._view_links.view(row.message_id, row.client_id),
            )
        except Exception as exc:  # a template that renders for the sample may still fail here
            return _unrenderable(exc)
        return rendered.data

    def _prepare_ahead(self, row: LedgerRow | None, ahead: dict[int, bytes | Outcome]) -> None:
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
        warned = False
        with self.engine.connect() as conn:
            started = utcnow()
            ledger.recover_stale(conn, started)
            try:
                while not self.stop.is_set() and summary.stopped is None:
                    ids = ledger.claim_batch(
                        conn,
                        worker=self.worker,
                        policy=self.policy,
                        now=utcnow(),
                        mailing_id=mailing_id,
                        tried_before=started,
                    )
                    if not ids:
                        break
                    if not warned:
                        # Once per pass that sends, so the daemon's log says it every time
                        # it mails people links they cannot open.
                        warned = True
                        problem = self.settings.base_url_problem()
                        if problem:
                            log.warning("%s", problem)
                    rows = ledger.load_rows(conn, ids)
                    self._load_renderers(conn, rows)
                    self._send_batch(conn, rows, summary)
            finally:
                ledger.release(conn, self.worker)
        return summary

    def _send_batch(self, conn: Connection, rows: list[LedgerRow], summary: Summary) -> None:
        pending: tuple[LedgerRow, Outcome] | None = None
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
            recorded: list[tuple[LedgerRow, str]] = []
            try:
                with raw_write(conn):
                    if pending is not None:
                        recorded.append((pending[0], self._record(conn, *pending, now)))
                    if time.monotonic() - last_renew > renew_every:
                        ledger.renew(conn, self.worker, self.policy, now, self._statements)
                        last_renew = time.monotonic()
                    if isinstance(prepared, Outcome):
                        recorded.append((row, self._record(conn, row, prepared, now)))
                        marked = False
                    else:
                        marked = ledger.mark_sending(
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
            assert not isinstance(prepared, Outcome)  # only a row with its bytes is marked
            self.in_flight = InFlight(
                row.email, row.mailing_id, time.monotonic() + self.policy.attempt_deadline
            )
            try:
                outcome = self.transport.send(
                    sender=self.from_address,
                    recipient=row.email,
                    data=prepared,
                    meanwhile=partial(self._prepare_ahead, following, ahead),
                )
            except SetupError as exc:  # a rejected login, an untrusted certificate
                ledger.put_back(conn, row.id)
                summary.stopped = f"paused: {exc}"
                break
            finally:
                self.in_flight = None
            pending = (row, outcome)
            reason = self._breaker.record(outcome)
            if reason is not None:
                summary.stopped = reason
                break
        if pending is not None:
            self._finish(conn, *pending, summary)
        # The owner sees why a pass stopped early; a pass that got through clears it.
        touched = {r.mailing_id for r in rows}
        ledger.note_mailings(conn, touched, summary.stopped)

    def _record(self, conn: Connection, row: LedgerRow, outcome: Outcome, now: datetime) -> str:
        return ledger.record(conn, row, outcome, self.policy, now, self._statements, self.worker)

    def _count(self, row: LedgerRow, status: str, summary: Summary) -> None:
        summary.count(status)
        summary.mailings.add(row.mailing_id)
        summary.runs.add(row.run_id)
        if self.progress is not None:
            self.progress(status)

    def _finish(
        self,
        conn: Connection,
        row: LedgerRow,
        outcome: Outcome,
        summary: Summary,
        now: datetime | None = None,
    ) -> None:
        """Record one outcome in a transaction of its own, and count it."""
        with conn.begin():
            status = self._record(conn, row, outcome, now or utcnow())
        self._count(row, status, summary)
