"""How fast a server may be sent to: limits shared through the database, and slowing down.

`SharedLimit` keeps one server's `rate_per_*` for every sender process on every host at once,
in its `smtp_server_state` row, changed only inside a locked transaction (`SELECT ... FOR
UPDATE` on PostgreSQL, `BEGIN IMMEDIATE` on SQLite), so two senders never take the same
slot. Per second it is a cell-rate schedule: each message books the next free slot, 1/R after
the previous one, and its sender waits for it; so sends are spread evenly, never a burst at the
top of a second. Per minute, hour and day it counts messages in the current UTC window; a full
window is a quota reached, and the pass waits for the next window instead of failing anyone.

`limits` shares state only through Redis, Memcached, MongoDB or etcd; `pyrate-limiter`'s
SQLite and PostgreSQL buckets bring their own drivers and connections, log a row per message
and answer "try again" instead of booking a start (README, "Relays"). So the schedule is one
row per server in the database every sender already shares, on mailctl's own engine.

`Throttle` is the answer to a server saying "slow down" (421, 451 4.7.x, 454 4.7.0): the
rate toward that server, in this process, is halved at each such reply and grows again by one
message per second for each second without one (additive increase, multiplicative decrease).
"""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from mailctl.config import SmtpServer
from mailctl.models import SmtpServerState

S = SmtpServerState.__table__.c  # type: ignore[attr-defined]
T = SmtpServerState.__table__  # type: ignore[attr-defined]
WINDOWS = (("minute", 60.0), ("hour", 3600.0), ("day", 86400.0))


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


@dataclass(frozen=True)
class SharedLimit:
    name: str
    per_second: float
    quotas: tuple[tuple[str, float, int], ...]  # (window, its length in seconds, limit)

    @classmethod
    def of(cls, server: SmtpServer, window_seconds: int | None = None) -> SharedLimit | None:
        """None when the server has no limit (then sending never asks the database).
        `window_seconds` shrinks every quota window (MAILCTL_TEST_PERIOD_SECONDS)."""
        if not server.limited:
            return None
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

    def reserve(self, conn: Connection, now: float | None = None) -> tuple[float, bool]:
        """Book one message: (seconds to wait, True) when booked, to start after that wait;
        (seconds to wait, False) when the next free slot is more than one slot away, to ask
        again after the wait. Booking only the slot about to come means a sender the machine
        wakes late starts in a later slot instead of bunching with others. Raises
        QuotaReached, booking nothing, when a window is full."""
        now = time.time() if now is None else now
        with conn.begin():
            ensure_row(conn, self.name)
            row = conn.execute(select(T).where(S.name == self.name).with_for_update()).one()
            if self.per_second:
                interval = 1.0 / self.per_second
                if row.next_slot - now > interval + 1e-6:  # (float rounding)
                    # Spread the askers over the slot, so they do not all ask at once.
                    return row.next_slot - interval - now + random.uniform(0, interval / 2), False
                start = max(row.next_slot, now)
            else:
                start = now
            values: dict[str, float] = {}
            for window, length, limit in self.quotas:
                opened = math.floor(start / length) * length
                current = getattr(row, f"{window}_start") == opened
                used = getattr(row, f"{window}_count") if current else 0
                if used >= limit:
                    raise QuotaReached(self.name, window, limit, opened + length, length)
                values[f"{window}_start"] = opened
                values[f"{window}_count"] = used + 1
            if self.per_second:
                values["next_slot"] = start + 1.0 / self.per_second
            conn.execute(update(T).where(S.name == self.name).values(**values))
        return max(0.0, start - now), True


class Throttle:
    """This process's rate toward one server after it asked us to slow down (AIMD)."""

    FLOOR = 0.5  # messages per second: never stop altogether, a retry must get through

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.rate: float | None = None  # None: not throttled
        self._peak = 0.0  # the rate seen when the first "slow down" came
        self._changed = 0.0
        self._next = 0.0
        self._recent: list[float] = []  # start times of the last messages, for the rate seen

    def slowed(self, now: float | None = None) -> float:
        """A "slow down" answer: halve the rate (the rate seen so far, the first time)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if self.rate is None:
                self._peak = self._seen(now)
                self.rate = self._peak
            self.rate = max(self.FLOOR, self.rate / 2)
            self._changed = now
            return self.rate

    def wait(self, now: float | None = None) -> float:
        """Book the next start toward this server: the seconds to wait first."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._recent.append(now)
            del self._recent[:-100]
            if self.rate is None:
                return 0.0
            # One more message per second for every second since the last change.
            self.rate += now - self._changed
            self._changed = now
            if self.rate >= self._peak:
                self.rate = None  # recovered: full speed again
                return 0.0
            start = max(self._next, now)
            self._next = start + 1.0 / self.rate
            return start - now

    def _seen(self, now: float) -> float:
        recent = [t for t in self._recent if now - t <= 2.0]
        return max(self.FLOOR * 2, len(recent) / 2.0)
