"""What a sender decides: when to retry, when to give up, when to stop a pass, what it did.

The circuit breaker stops a pass when the mail server is in trouble for everyone. Trouble is
a run of attempts in a row that the server did not answer properly: it could not be reached,
timed out or spoke nonsense before the message (deferred, retried later), or took the
message and then said nothing (unknown: maybe delivered, so never resent by itself). The last
kind is the costly one: at a 30 s timeout a silent server would cost 8 hours per 1,000
recipients and leave every one of them unknown.

After a pass stopped this way, the next one starts half-open: its first attempt decides.
One more failure stops it at once, so a server that stays down costs one attempt per pass,
not a full count; an attempt that goes through closes the breaker again.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from mailctl.config import Settings
from mailctl.models.delivery import DEFERRED, FAILED, SKIPPED, UNKNOWN
from mailctl.sending.transport import Outcome


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

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        d = settings.delivery
        return cls(
            batch_size=d.batch_size,
            lease=timedelta(seconds=d.lease_seconds),
            in_flight=timedelta(seconds=max(d.lease_seconds, 2 * d.attempt_deadline_seconds)),
            retry_first=float(d.retry_first_seconds),
            retry_max=float(d.retry_max_seconds),
            lifetime=timedelta(seconds=d.retry_lifetime_seconds),
            breaker=d.circuit_breaker,
            attempt_deadline=d.attempt_deadline_seconds,
        )

    def backoff(self, attempts: int) -> timedelta:
        return timedelta(seconds=min(self.retry_first * 2 ** max(attempts - 1, 0), self.retry_max))

    def judge(
        self, outcome: Outcome, *, attempts: int, first: datetime | None, now: datetime
    ) -> Verdict:
        """What the ledger records for one attempt: a temporary failure is retried after a
        back-off, until the recipient's lifetime is spent; a skip is not an attempt."""
        status = outcome.status
        attempts += 0 if status == SKIPPED else 1
        first = first or now
        reply = outcome.reply
        next_at = None
        if status == DEFERRED:
            if now - first >= self.lifetime:
                status = FAILED
                reply = f"gave up after {attempts} attempts: {outcome.reply}"
            else:
                next_at = now + self.backoff(attempts)
        return Verdict(status, attempts, first, outcome.code, reply, next_at)


class Verdict(NamedTuple):  # one per attempt, in the hot loop: a tuple is cheapest
    status: str
    attempts: int
    first_attempt_at: datetime
    code: int | None
    reply: str
    next_attempt_at: datetime | None


# How a stop starts the note on the mailing (mailing.last_error), which is how the next
# pass knows the previous one was stopped by the breaker.
STOP = "stopped after "


def _trouble(outcome: Outcome) -> str | None:
    if outcome.connection_failure:
        return "connection"
    if outcome.status == UNKNOWN:
        return "silence"
    return None


class Breaker:
    """Counts trouble across batches (a dead server trips it wherever a batch ends).

    A server that answers now and then defeats a count of troubles in a row: one silent after
    every other message costs a timeout per two recipients and leaves half of them unknown. So
    trouble in `limit` of the last 2 x `limit` attempts stops the pass too.
    """

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.count = 0
        self.kinds: set[str] = set()
        # The kind of trouble (or None) of each of the last 2 x limit attempts.
        self.recent: deque[str | None] = deque(maxlen=2 * self.limit)
        self.half_open = False
        self._answered = False  # the server answered properly once in this pass

    def probe(self, notes: Iterable[str | None]) -> None:
        """Start half-open if a mailing about to be sent was stopped by the breaker before."""
        if not self._answered and any(n and n.startswith(STOP) for n in notes):
            self.half_open = True

    def record(self, outcome: Outcome) -> str | None:
        """Count one outcome; the reason to stop the pass, or None to go on."""
        kind = _trouble(outcome)
        self.recent.append(kind)
        if kind is None:
            self.count, self.kinds, self.half_open, self._answered = 0, set(), False, True
            return None
        self.count += 1
        self.kinds.add(kind)
        what = self._in_a_row() or self._most_recent()
        if what is None:
            return None
        return f"{STOP}{what} ({outcome.reply}); the rest waits for the next pass"

    def _in_a_row(self) -> str | None:
        n = self.count
        if n < (1 if self.half_open else self.limit):
            return None
        if self.kinds == {"connection"}:
            what = f"{n} consecutive connection failure{'s' if n > 1 else ''}"
        elif self.kinds == {"silence"}:
            what = f"{n} consecutive message{'s' if n > 1 else ''} with no reply from the server"
        else:
            what = f"{n} consecutive failed attempts"
        return what + (" as the previous pass did" if self.half_open else "")

    def _most_recent(self) -> str | None:
        troubles = [k for k in self.recent if k is not None]
        window = len(self.recent)
        if window < 2 * self.limit or len(troubles) < self.limit:
            return None
        n, kinds = len(troubles), set(troubles)
        if kinds == {"connection"}:
            return f"connection failures in {n} of the last {window} attempts"
        if kinds == {"silence"}:
            return f"no reply from the server to {n} of the last {window} messages"
        return f"{n} failed attempts of the last {window}"


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

    @property
    def busy(self) -> bool:
        """The pass started a run or recorded an outcome."""
        return bool(
            self.runs_started
            or self.sent
            or self.deferred
            or self.failed
            or self.unknown
            or self.skipped
        )

    def count(self, status: str) -> None:
        setattr(self, status, getattr(self, status) + 1)

    def counts_line(self) -> str:
        return (
            f"sent {self.sent}, deferred {self.deferred}, failed {self.failed}, "
            f"unknown {self.unknown}, skipped {self.skipped}"
        )

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
