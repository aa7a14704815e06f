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
from mailctl.sending.feed import Feed
from mailctl.sending.ledger import LedgerRow, Statements
from mailctl.sending.links import FastUnsubscribeLinks, FastViewLinks, Links
from mailctl.sending.mime import HeaderInjection
from mailctl.sending.policy import Breaker, Policy, Summary
from mailctl.sending.pool import Lane, Pool
from mailctl.sending.render import MessageContent, MessageRenderer
from mailctl.sending.templates import Attrs, RenderClient, RenderFailed
from mailctl.sending.transport import NotSent, Outcome, SetupError, Transport
from mailctl.sending.verp import ReturnPath

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
        # What each lane waits on the server for, by lane.
        self._in_flight: dict[int, InFlight] = {}
        self._pool: Pool | None = None
        self._lanes: list[Transport] = []
        self._lanes_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._breaker = Breaker(self.policy.breaker)
        self._links = FastUnsubscribeLinks(Links.from_settings(settings))
        self._address_key = settings.web_secret_key()  # keys the suppression list's hashes
        self._view_links = FastViewLinks(Links.from_settings(settings))
        # Each message's envelope sender names its ledger row, so its bounce finds the row.
        self._return_path = ReturnPath.from_settings(settings)
        self._statements = Statements(engine.dialect)

    @property
    def pool(self) -> Pool:
        if self._pool is None:
            self._pool = Pool.from_settings(self.settings, stop=self.stop)
        return self._pool

    @property
    def in_flight(self) -> InFlight | None:
        """The message whose deadline ends last (a stop waits for every lane's)."""
        waiting = list(self._in_flight.values())
        return max(waiting, key=lambda f: f.until) if waiting else None

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        with self._lanes_lock:
            lanes, self._lanes = self._lanes, []
        for lane in lanes:
            lane.close()
        if self._pool is not None:
            self._pool.close()
            self._pool = None

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
        if row.suppressed is not None:
            return Outcome(SKIPPED, None, f"suppressed ({row.suppressed})")
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
                RenderClient(
                    email=row.email, full_name=row.full_name or "", attrs=Attrs(row.attrs)
                ),
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
        """Send every claimable row (of one mailing, or all) until none is left or we stop.

        One lane per connection the transport keeps (`[smtp] connections`), all drawing from
        the same claimed batches; each lane has its own database connection and keeps the
        ledger's order for its rows, so a crash leaves at most one row per lane `sending`.
        """
        summary = summary or Summary()
        self._breaker = Breaker(self.policy.breaker)
        started = utcnow()
        with self.engine.connect() as conn:
            ledger.recover_stale(conn, started)
        feed = Feed(
            self, summary, mailing_id=mailing_id, started=started, first=self._warn_base_url
        )
        if self._transport is None:
            self.pool.running = feed.running
            self.pool.verdict = partial(self._verdict, feed)
        try:
            lanes = self.lane_count()
            if lanes == 1:
                self._lane(0, feed, summary)
            else:
                threads = [
                    threading.Thread(
                        target=self._lane_guarded,
                        args=(index, feed, summary),
                        name=f"mailctl-lane-{index}",
                        daemon=True,
                    )
                    for index in range(lanes)
                ]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                if feed.error is not None:
                    raise feed.error
        finally:
            if summary.stopped is None:
                summary.stopped = feed.fallback
            with self.engine.connect() as conn:
                ledger.release(conn, self.worker)
                # The owner sees why a pass stopped early; a pass that got through clears it.
                ledger.note_mailings(conn, feed.touched, summary.stopped, feed.quota)
        return summary

    @staticmethod
    def _verdict(feed: Feed, outcome: Outcome) -> None:
        reason = feed.judge(outcome)
        if reason is not None:
            feed.halt(reason)

    def _warn_base_url(self) -> None:
        # Once per pass that sends, so the daemon's log says it every time it mails people
        # links they cannot open.
        problem = self.settings.base_url_problem()
        if problem:
            log.warning("%s", problem)

    def lane_count(self) -> int:
        return 1 if self._transport is not None else self.pool.lanes

    def _lane_transport(self, index: int) -> Transport:
        if self._transport is not None:
            return self._transport
        with self._lanes_lock:
            while len(self._lanes) <= index:
                self._lanes.append(self.pool.lane())
            return self._lanes[index]

    def _lane_guarded(self, index: int, feed: Feed, summary: Summary) -> None:
        try:
            self._lane(index, feed, summary)
        except BaseException as exc:  # the caller of deliver() raises it, once all lanes end
            feed.fail(exc)

    def _lane(self, index: int, feed: Feed, summary: Summary) -> None:
        """One connection's share of the pass: the ledger's order, row after row."""
        transport = self._lane_transport(index)
        with self.engine.connect() as conn:
            if isinstance(transport, Lane):
                transport.bind(conn)
            pending: list[tuple[LedgerRow, Outcome]] = []  # the outcome not yet recorded

            def flush() -> None:
                if pending:
                    self._finish(conn, *pending.pop(), summary)

            # The next row's message, rendered while the server was busy with this one.
            ahead: dict[int, bytes | Outcome] = {}
            row = feed.take(conn, flush)
            try:
                while row is not None and feed.running():
                    last = pending.pop() if pending else None
                    done = self._one(conn, index, transport, feed, summary, row, last, ahead)
                    if done is not None:
                        pending.append(done)
                    row = feed.next_for(conn, index, flush)
            finally:
                flush()

    def _one(
        self,
        conn: Connection,
        index: int,
        transport: Transport,
        feed: Feed,
        summary: Summary,
        row: LedgerRow,
        pending: tuple[LedgerRow, Outcome] | None,
        ahead: dict[int, bytes | Outcome],
    ) -> tuple[LedgerRow, Outcome] | None:
        """Record the lane's previous outcome with this row's move to `sending`, then send it;
        returns this row's outcome, to be recorded with the lane's next row."""
        prepared = ahead.pop(row.id) if row.id in ahead else self._prepare(row)
        now = utcnow()
        recorded: list[tuple[LedgerRow, str]] = []
        # Asked before the write: a lane holding the feed's lock may be waiting for the
        # database's, so no lane may wait for the feed while it holds the database.
        renew = feed.renew_due()
        try:
            with raw_write(conn):
                if pending is not None:
                    recorded.append((pending[0], self._record(conn, *pending, now)))
                if renew:
                    ledger.renew(conn, self.worker, self.policy, now, self._statements)
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
        if not marked:
            return None
        assert not isinstance(prepared, Outcome)  # only a row with its bytes is marked
        following = feed.peek_for(conn, index)
        self._in_flight[index] = InFlight(
            row.email, row.mailing_id, time.monotonic() + self.policy.attempt_deadline
        )
        try:
            outcome = transport.send(
                sender=self._return_path.sender(row.mailing_id, row.run_id, row.client_id),
                recipient=row.email,
                data=prepared,
                meanwhile=partial(self._prepare_ahead, following, ahead),
            )
        except SetupError as exc:  # a rejected login, an untrusted certificate, everywhere
            ledger.put_back(conn, row.id)
            feed.halt(f"paused: {exc}")
            return None
        except NotSent as exc:  # a quota, a stop while pacing: as if never taken
            ledger.put_back(conn, row.id)
            if exc.fallback:
                feed.exhausted(exc.halt)
            elif exc.quota is not None and exc.halt is not None:
                feed.wait_quota(exc.halt, *exc.quota)
            elif exc.halt is not None:
                feed.halt(exc.halt)
            return None
        finally:
            self._in_flight.pop(index, None)
        if not isinstance(transport, Lane):  # a pool's lane asked the breaker already
            self._verdict(feed, outcome)
        if outcome.throttled:
            retry = self.policy.throttle_retry(row.attempts + 1).total_seconds()
            feed.retry_soon(row.id, retry)
        return (row, outcome)

    def _record(self, conn: Connection, row: LedgerRow, outcome: Outcome, now: datetime) -> str:
        return ledger.record(conn, row, outcome, self.policy, now, self._statements, self.worker)

    def _count(self, row: LedgerRow, status: str, summary: Summary) -> None:
        with self._count_lock:  # lanes count into one summary and one progress bar
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
