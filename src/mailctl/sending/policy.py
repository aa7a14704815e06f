"""What a sender decides: when to retry, when to give up, when to stop a pass, what it did."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from mailctl.config import Settings
from mailctl.models.delivery import DEFERRED, FAILED, SKIPPED
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


@dataclass(frozen=True)
class Verdict:
    status: str
    attempts: int
    first_attempt_at: datetime
    code: int | None
    reply: str
    next_attempt_at: datetime | None


class Breaker:
    """Stops a pass when the server is down for everyone: after `limit` consecutive
    connection failures, counted across batches (a dead server trips it wherever a batch
    ends), so the rest waits for a later pass instead of hammering it."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.failures = 0

    def reset(self) -> None:
        self.failures = 0

    def trips(self, outcome: Outcome) -> str | None:
        """Count one outcome; the reason to stop when this one trips the breaker."""
        self.failures = self.failures + 1 if outcome.connection_failure else 0
        if self.failures < self.limit:
            return None
        return (
            f"stopped after {self.failures} consecutive connection failures "
            f"({outcome.reply}); the rest waits for the next pass"
        )


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
