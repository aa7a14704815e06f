"""The claimed rows of one pass, shared by its lanes (one lane per SMTP connection).

Whichever lane finds the feed empty claims the next batch on its own database connection,
under the feed's lock, between two of its messages (never while its server is talking). Each
lane reserves the row it will send next, so it can render that message while the server
answers the current one. The pass's circuit breaker and its stop reason live here too, so a
stop seen by one lane stops them all after their message in flight.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from sqlalchemy.engine import Connection

from mailctl.db import utcnow
from mailctl.sending import ledger
from mailctl.sending.ledger import LedgerRow
from mailctl.sending.policy import Breaker, Policy, Summary
from mailctl.sending.transport import Outcome

# A recipient throttled this often in one pass waits for the next pass.
MAX_THROTTLED = 5
RETRY_GRACE = 30.0  # seconds a throttled row due again is waited for in its pass


class Owner(Protocol):
    """What the feed needs of its sender (engine.Sender), without importing it."""

    worker: str
    policy: Policy
    stop: threading.Event
    _breaker: Breaker
    _address_key: str  # keys the suppression list's hashes

    def _load_renderers(self, conn: Connection, rows: list[LedgerRow]) -> None: ...


class Feed:
    def __init__(
        self,
        sender: Owner,
        summary: Summary,
        *,
        mailing_id: int | None,
        started: datetime,
        first: Callable[[], None] | None = None,
    ) -> None:
        self._first = first  # called once, when the pass finds something to send
        self.sender = sender
        self.summary = summary
        self.mailing_id = mailing_id
        self.started = started
        self.touched: set[int] = set()
        self.error: BaseException | None = None
        self._rows: deque[LedgerRow] = deque()
        self._reserved: dict[int, LedgerRow | None] = {}
        self._done = False
        self._exhausted = False
        self.fallback: str | None = None
        self.quota: tuple[str, float] | None = None  # what stopped the pass, if a quota did
        # Rows throttled in this pass: when to stop waiting for each, and how often it was.
        self._retry: dict[int, float] = {}
        self._throttles: dict[int, int] = {}
        self._lock = threading.Lock()
        self._last_renew = time.monotonic()
        self._renew_every = sender.policy.lease.total_seconds() / 3

    def take(
        self, conn: Connection, flush: Callable[[], None] | None = None, *, wait: bool = True
    ) -> LedgerRow | None:
        """The next row to send, claiming a batch when none is left; None when done. Rows a
        server throttled in this pass are waited for (they are due again in seconds)."""
        while True:
            with self._lock:
                if self._stopped():
                    return None
                if not self._rows and not self._done:
                    self._claim(conn)
                if self._rows:
                    return self._rows.popleft()
                now = time.monotonic()
                self._retry = {i: t for i, t in self._retry.items() if t > now}
                if not self._retry or not wait:
                    return None
                self._done = False
            # Outside the lock, the lane's own last outcome recorded first (a throttled row
            # is claimable only once its outcome is in).
            if flush is not None:
                flush()
            if self.sender.stop.wait(0.2):
                return None

    def retry_soon(self, row_id: int, seconds: float) -> None:
        """A row a server throttled: claim it again in this pass once due (a few times)."""
        with self._lock:
            self._throttles[row_id] = self._throttles.get(row_id, 0) + 1
            if self._throttles[row_id] <= MAX_THROTTLED:
                # Given up on when it is still not claimable a while after it is due (its
                # outcome rides on the lane's next write, which a slowed server can hold up
                # for seconds on a busy machine; the next pass takes it then).
                self._retry[row_id] = time.monotonic() + seconds + RETRY_GRACE

    def peek_for(self, conn: Connection, lane: int) -> LedgerRow | None:
        """Reserve the lane's next row (to render it while the server answers); never waits."""
        if lane not in self._reserved:
            row = self.take(conn, wait=False)
            if row is None:
                return None
            self._reserved[lane] = row
        return self._reserved[lane]

    def next_for(
        self, conn: Connection, lane: int, flush: Callable[[], None] | None = None
    ) -> LedgerRow | None:
        if lane in self._reserved:
            return self._reserved.pop(lane)
        return self.take(conn, flush)

    def _claim(self, conn: Connection) -> None:
        sender = self.sender
        ids = ledger.claim_batch(
            conn,
            worker=sender.worker,
            policy=sender.policy,
            now=utcnow(),
            mailing_id=self.mailing_id,
            tried_before=self.started,
            retry_ids=sorted(self._retry),
        )
        for row_id in ids:
            self._retry.pop(row_id, None)
        if not ids:
            self._done = True
            return
        if self._first is not None:
            self._first()
            self._first = None
        rows = ledger.load_rows(conn, ids, sender._address_key)
        sender._load_renderers(conn, rows)
        sender._breaker.probe(r.mailing_error for r in rows)
        self.touched.update(r.mailing_id for r in rows)
        self._rows.extend(rows)

    def renew_due(self) -> bool:
        """Whether this lane should renew the pass's leases in its next write (one lane does)."""
        with self._lock:
            if time.monotonic() - self._last_renew <= self._renew_every:
                return False
            self._last_renew = time.monotonic()
            return True

    def judge(self, outcome: Outcome) -> str | None:
        with self._lock:
            return self.sender._breaker.record(outcome)

    def halt(self, reason: str) -> None:
        with self._lock:
            if self.summary.stopped is None:
                self.summary.stopped = reason

    def wait_quota(self, reason: str, server: str, until: float) -> None:
        """A server's quota is full: the pass stops and the mailings wait for its window."""
        with self._lock:
            if self.summary.stopped is None:
                self.summary.stopped = reason
                self.quota = (server, until)

    def exhausted(self, reason: str | None) -> None:
        """No server is left for this pass: it ends; `reason` is its note if none other is."""
        with self._lock:
            self._exhausted = True
            if self.fallback is None:
                self.fallback = reason

    def fail(self, exc: BaseException) -> None:
        """A lane died (the database went away): the others stop after their message."""
        with self._lock:
            if self.error is None:
                self.error = exc

    def running(self) -> bool:
        return not self._stopped()

    def _stopped(self) -> bool:
        return (
            self._exhausted
            or self.error is not None
            or self.sender.stop.is_set()
            or self.summary.stopped is not None
        )
