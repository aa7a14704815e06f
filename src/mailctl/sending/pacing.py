"""How fast a server may be sent to: limits and slowing down, shared through the database.

`SharedLimit` keeps one server's `rate_per_*` for every sender process on every host at once,
in its `smtp_server_state` row, changed only inside a locked transaction (`SELECT ... FOR
UPDATE` on PostgreSQL, `BEGIN IMMEDIATE` on SQLite), so two senders never take the same
slot. Per second it is a cell-rate schedule: each message books the next free slot, one
interval after the previous one, and its sender waits for it; so sends are spread evenly,
never a burst at the top of a second. Per minute, hour and day it counts messages in the
current UTC window; a full window is a quota reached, and the pass waits for the next window
instead of failing anyone.

A slot is the moment the message's final dot may leave (what a relay counts, and what the
sink's clock sees): the sender opens the envelope first and sends the dot in its slot. A
sender that reaches its slot more than `LATE` seconds late (the machine was busy, the
envelope's round trip took longer than the wait) gives the slot back and books the next free
one, so a late message never lands next to the ones booked after it. The interval is padded
by that tolerance, (1 + LATE) / R, which is what makes "at most R in any second" hold for
every one-second window, not just on average. Times are the database's clock on PostgreSQL
(senders on several hosts whose clocks differ still share one schedule) and the local clock
on SQLite (one host).

`limits` shares state only through Redis, Memcached, MongoDB or etcd; `pyrate-limiter`'s
SQLite and PostgreSQL buckets bring their own drivers and connections, log a row per message
and answer "try again" instead of booking a start (README, "Relays"). So the schedule is one
row per server in the database every sender already shares, on mailctl's own engine.

A server saying "slow down" (421, 451 4.7.x, 454 4.7.0) lowers the rate in that same row for
every sender (additive increase, multiplicative decrease): halved at such a reply (not again
within two messages' time at the new rate, at most `HOLD` seconds: the replies right after a
decrease answer messages sent before it), growing
back by `STEP` messages per second each second until the rate it was slowed from. A server
with no limit of its own is paced only while slowed; its senders look at the row once every
`CHECK` seconds to learn whether another sender slowed it.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from mailctl.config import SmtpServer
from mailctl.models import SmtpServerState

S = SmtpServerState.__table__.c  # type: ignore[attr-defined]
T = SmtpServerState.__table__  # type: ignore[attr-defined]
WINDOWS = (("minute", 60.0), ("hour", 3600.0), ("day", 86400.0))
LATE = 0.01  # seconds past its slot a final dot may still leave
FLOOR = 0.5  # messages per second: a slowed server is never stopped, a retry must get through
STEP = 1.0  # messages per second regained per second without a "slow down"
HOLD = 1.0  # at most this long after a decrease, another "slow down" does not halve again
CHECK = 1.0  # seconds between two looks at an unlimited server's row


class QuotaReached(Exception):
    """A window's quota is used up: nothing more goes to this server until `until`."""

    def __init__(self, server: str, window: str, limit: int, until: float, length: float) -> None:
        self.server, self.window, self.limit, self.until = server, window, limit, until
        self.length = length
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(until))
        super().__init__(
            f"{server} has sent its quota of {limit} messages per {window}; sending"
            f" resumes at {when}"
        )


def ensure_row(conn: Connection, name: str) -> None:
    """The server's state row, created once by whichever sender comes first."""
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(insert(T).values(name=name).on_conflict_do_nothing(index_elements=["name"]))


def clock(conn: Connection) -> tuple[float, float]:
    """Now, in epoch seconds, on the clock every sender shares (the database server's on
    PostgreSQL, asked after the row's lock is held, so a wait for the lock is not in it), and
    time.monotonic() at that moment: a slot is waited for from there, so the time the commit
    takes is not added to it."""
    if conn.dialect.name == "postgresql":
        before = time.monotonic()
        now = float(conn.execute(text("SELECT extract(epoch FROM clock_timestamp())")).scalar_one())
        # The server read its clock about halfway through the round trip.
        return now, (before + time.monotonic()) / 2
    return time.time(), time.monotonic()


def slowed_rate(row: Any, now: float) -> float | None:
    """The rate a "slow down" left the server at, grown back since; None when not slowed."""
    if row is None or row.throttle_rate is None:
        return None
    rate = float(row.throttle_rate) + STEP * max(0.0, now - row.throttled_at)
    return None if rate >= row.throttle_peak else rate


@dataclass
class SharedLimit:
    name: str
    per_second: float
    quotas: tuple[tuple[str, float, int], ...]  # (window, its length in seconds, limit)
    # This process's view of whether the server is slowed (for a server without limits of
    # its own), and when it last looked.
    _slowed: bool = False
    _checked: float = -math.inf
    _recent: deque[float] = field(default_factory=lambda: deque(maxlen=200))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def of(cls, server: SmtpServer, window_seconds: int | None = None) -> SharedLimit:
        """`window_seconds` shrinks every quota window (MAILCTL_TEST_PERIOD_SECONDS)."""
        limits = {
            "minute": server.rate_per_minute,
            "hour": server.rate_per_hour,
            "day": server.rate_per_day,
        }
        quotas = tuple(
            (window, float(window_seconds or length), limits[window])
            for window, length in WINDOWS
            if limits[window]
        )
        return cls(server.name, server.rate_per_second, quotas)

    @property
    def limited(self) -> bool:
        return bool(self.per_second or self.quotas)

    def interval(self, rate: float) -> float:
        return (1.0 + LATE) / rate

    def paced(self, conn: Connection) -> bool:
        """Whether a message must book with the database: a limit, or the server slowed (by
        any sender: an unlimited server's row is looked at once every CHECK seconds)."""
        if self.limited:
            return True
        with self._lock:
            if self._slowed or time.monotonic() - self._checked < CHECK:
                return self._slowed
            self._checked = time.monotonic()
        with conn.begin():
            row = conn.execute(select(T).where(S.name == self.name)).first()
            slowed = slowed_rate(row, clock(conn)[0]) is not None
        with self._lock:
            self._slowed = slowed
        return slowed

    def reserve(
        self, conn: Connection, now: float | None = None, *, count: bool = True, lead: float = 0
    ) -> tuple[float, bool]:
        """`book`, the wait counted from the moment the clock was read."""
        wait, booked, _ = self.book(conn, now, count=count, lead=lead)
        return wait, booked

    def book(
        self,
        conn: Connection,
        now: float | None = None,
        *,
        count: bool = True,
        lead: float = 0.0,
    ) -> tuple[float, bool, float]:
        """Book one message: (seconds to wait, True) when booked, its final dot to leave
        after that wait; (seconds to wait, False) when the next free slot is more than one
        slot away, to ask again after the wait. Booking only the slot about to come means a
        sender the machine wakes late starts in a later slot instead of bunching with others.
        Raises QuotaReached, booking nothing, when a window is full. `count=False` books a
        new slot for a message whose quota is already counted (its first slot was missed).
        `lead` is how long the sender needs before its final dot can leave (the envelope's
        round trip): no slot sooner than that is booked. The third value is the
        time.monotonic() the wait counts from."""
        with conn.begin():
            ensure_row(conn, self.name)
            row = conn.execute(select(T).where(S.name == self.name).with_for_update()).one()
            now, since = clock(conn) if now is None else (now, time.monotonic())
            values: dict[str, Any] = {}
            slowed = slowed_rate(row, now)
            if slowed is None and row.throttle_rate is not None:
                values["throttle_rate"] = None  # grown back: full speed for everyone
            with self._lock:
                self._slowed = slowed is not None
            rates = [r for r in (self.per_second, slowed) if r]
            rate = min(rates) if rates else 0.0
            if rate:
                interval = self.interval(rate)
                if row.next_slot - now > interval + lead + 1e-6:  # (float rounding)
                    # Spread the askers over the slot, so they do not all ask at once.
                    ask = row.next_slot - interval - lead - now + random.uniform(0, interval / 2)
                    return ask, False, since
                start = max(row.next_slot, now + lead)
                values["next_slot"] = start + interval
            else:
                start = now
            for window, length, limit in self.quotas if count else ():
                opened = math.floor(start / length) * length
                current = getattr(row, f"{window}_start") == opened
                used = getattr(row, f"{window}_count") if current else 0
                if used >= limit:
                    raise QuotaReached(self.name, window, limit, opened + length, length)
                values[f"{window}_start"] = opened
                values[f"{window}_count"] = used + 1
            if values:
                conn.execute(update(T).where(S.name == self.name).values(**values))
        if count:
            with self._lock:
                self._recent.append(time.monotonic())
        return max(0.0, start - now), True, since

    def started(self, now: float | None = None) -> None:
        """A message went out without booking (no limit, not slowed): for the rate seen."""
        with self._lock:
            self._recent.append(time.monotonic() if now is None else now)

    def slowed(self, conn: Connection, now: float | None = None) -> float:
        """A "slow down" answer: halve the server's rate for every sender; the new rate."""
        with conn.begin():
            ensure_row(conn, self.name)
            row = conn.execute(select(T).where(S.name == self.name).with_for_update()).one()
            now = clock(conn)[0] if now is None else now
            current = slowed_rate(row, now)
            if current is not None and now - row.throttled_at < min(HOLD, 2 / current):
                return current  # an answer to a message sent before the last decrease
            if current is None:
                peak = self.per_second or self._seen()
                current = peak
            else:
                peak = row.throttle_peak
            rate = max(FLOOR, current / 2)
            conn.execute(
                update(T)
                .where(S.name == self.name)
                .values(throttle_rate=rate, throttle_peak=peak, throttled_at=now)
            )
        with self._lock:
            self._slowed = True
        return rate

    def _seen(self) -> float:
        """This process's rate over the last two seconds (a server without a limit of its own:
        what other senders send to it is not counted anywhere)."""
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._recent if now - t <= 2.0]
        if len(recent) < 2:
            return FLOOR * 2
        # Over the time they took (a pass that just began has sent for less than 2 s).
        return max(FLOOR * 2, len(recent) / max(now - recent[0], 0.1))
