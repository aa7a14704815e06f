"""The mail servers one sender process talks to, and one transport per lane (connection).

Servers of the lowest priority share the load by weight (smooth weighted round robin: the
shares are exact, not random), each with at most `connections` messages in flight. A server
not yet proven in this pass carries one message at a time until one goes through, so a dead
or refusing server costs one attempt at a time, not one per connection. A server that cannot
be reached, whose certificate fails or that refuses our login, while another can take over, is
taken out of rotation at once (its message goes to the next server, nothing of it having left);
trouble after connecting counts toward its own breaker (`delivery.circuit_breaker` in a row).
An out-of-rotation server is probed again after 30 s, doubling up to 10 minutes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

from sqlalchemy import update
from sqlalchemy.engine import Connection

from mailctl.config import Settings, SmtpServer
from mailctl.db import utcnow
from mailctl.models import SmtpServerState
from mailctl.models.delivery import FAILED, UNKNOWN
from mailctl.sending.pacing import LATE, QuotaReached, SharedLimit, ensure_row
from mailctl.sending.policy import STOP
from mailctl.sending.transport import (
    NotSent,
    OutboxTransport,
    Outcome,
    SetupError,
    SmtpTransport,
    Transport,
)

log = logging.getLogger(__name__)
PROBE_FIRST = 30.0
PROBE_MAX = 600.0
# A quota window that opens within this many seconds is waited for, not a pause of the pass.
QUOTA_WAIT = 2.0
T = SmtpServerState.__table__  # type: ignore[attr-defined]
S = T.c


@dataclass
class ServerState:
    server: SmtpServer
    limit: SharedLimit
    busy: int = 0
    proven: bool = False
    trouble: int = 0
    down_until: float = 0.0
    down_reason: str | None = None
    downs: int = 0
    current: int = 0  # smooth weighted round robin

    @property
    def name(self) -> str:
        return self.server.name

    def capacity(self) -> int:
        return self.server.connections if self.proven else 1


class Pool:
    def __init__(self, settings: Settings, stop: threading.Event | None = None) -> None:
        self.settings = settings
        self.stop = stop or threading.Event()
        self.smtp = settings.delivery.transport == "smtp"
        servers = settings.smtp.servers
        window = settings.test_period_seconds
        self.states = [ServerState(s, SharedLimit.of(s, window)) for s in servers]
        # An outbox is a folder: one lane writes as fast as several would.
        self.lanes = settings.smtp.lanes if self.smtp else 1
        self.breaker = max(1, settings.delivery.circuit_breaker)
        self._cond = threading.Condition()
        self._tickets = 0
        self._queue: deque[int] = deque()
        # Whether the pass goes on (the sender sets it to its feed's): a lane waiting for a
        # server gives up once the pass has stopped.
        self.running: Callable[[], bool] = lambda: True
        # The pass's verdict on an outcome (its circuit breaker), taken before the server's
        # slot is given back: no other lane starts on a server that just stopped the pass.
        self.verdict: Callable[[Outcome], None] = lambda outcome: None

    @classmethod
    def from_settings(cls, settings: Settings, stop: threading.Event | None = None) -> Pool:
        return cls(settings, stop)

    def lane(self) -> Transport:
        delivery = self.settings.delivery
        if not self.smtp:
            return OutboxTransport(
                delivery.outbox_dir, max_bytes=self.settings.render.max_message_bytes
            )
        return Lane(self)

    def close(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def connection(self, server: SmtpServer) -> SmtpTransport:
        return SmtpTransport(
            server,
            deadline=self.settings.delivery.attempt_deadline_seconds,
            max_bytes=self.settings.render.max_message_bytes,
        )

    # -- choosing a server ----------------------------------------------------------------

    def acquire(self, tried: set[str]) -> ServerState | None:
        """A server for one message, its connection slot taken; None when none is left."""
        chosen: ServerState | None = None
        with self._cond:
            # First come, first served: lanes get servers in the order they asked, so the
            # rows go out in ledger order and the weights hold exactly.
            ticket = self._tickets
            self._tickets += 1
            self._queue.append(ticket)
            try:
                while not self.stop.is_set() and self.running():
                    now = time.monotonic()
                    usable = [s for s in self.states if s.name not in tried and s.down_until <= now]
                    if not usable:
                        return None
                    if self._queue[0] == ticket:
                        best = min(s.server.priority for s in usable)
                        tier = [s for s in usable if s.server.priority == best]
                        if chosen is None or chosen not in tier:
                            chosen = _pick(tier)
                        if chosen.busy < chosen.capacity():
                            chosen.busy += 1
                            return chosen
                    self._cond.wait(0.2)
                return None
            finally:
                self._queue.remove(ticket)
                self._cond.notify_all()

    def release(self, state: ServerState) -> None:
        with self._cond:
            state.busy -= 1
            self._cond.notify_all()

    def others(self, tried: set[str]) -> bool:
        now = time.monotonic()
        return any(s.name not in tried and s.down_until <= now for s in self.states)

    # -- what a server's answer tells ------------------------------------------------------

    def answered(
        self, state: ServerState, outcome: Outcome, tried: set[str], conn: Connection | None
    ) -> str | None:
        """Count one outcome toward the server's health; the health note when it changed."""
        if outcome.throttled:
            return self._slowed(state, outcome, conn)
        with self._cond:
            trouble = outcome.connection_failure or outcome.status == UNKNOWN
            if not trouble:
                state.trouble, state.proven = 0, True
                if state.downs:
                    state.downs = 0
                    return "in rotation"
                return None
            state.trouble += 1
            elsewhere = outcome.untried and self.others(tried | {state.name})
            if elsewhere or state.trouble >= self.breaker:
                return self._take_out(state, outcome.reply)
            return None

    @staticmethod
    def _slowed(state: ServerState, outcome: Outcome, conn: Connection | None) -> str:
        """A "slow down": the server's rate halves for every sender (in the database)."""
        if conn is None:
            return f"throttled after {outcome.reply}"
        try:
            rate = state.limit.slowed(conn)
        except Exception as exc:  # the lane's next write says it if the database is gone
            log.warning("could not slow %s down for every sender: %s", state.name, exc)
            return f"throttled after {outcome.reply}"
        log.warning("%s asked to slow down: %.1f msg/s for every sender", state.name, rate)
        return f"throttled: slowed to {rate:.1f} msg/s after {outcome.reply}"

    def _take_out(self, state: ServerState, reason: str) -> str:
        state.downs += 1
        wait = min(PROBE_FIRST * 2 ** (state.downs - 1), PROBE_MAX)
        state.down_until = time.monotonic() + wait
        state.down_reason = reason
        state.proven, state.trouble = False, 0
        self._cond.notify_all()
        return f"out of rotation for {wait:.0f}s: {reason}"

    def take_out(self, state: ServerState, reason: str) -> str:
        with self._cond:
            return self._take_out(state, reason)

    def note(self, conn: Connection | None, state: ServerState, health: str) -> None:
        """What `mailctl smtp list` shows about a server, for every process to see."""
        if conn is None:
            return
        try:
            with conn.begin():
                ensure_row(conn, state.name)
                conn.execute(
                    update(T)
                    .where(S.name == state.name)
                    .values(health=health[:1000], health_at=utcnow())
                )
        except Exception as exc:  # a note must never cost a message its outcome
            log.warning("could not note the health of %s: %s", state.name, exc)


def _pick(tier: list[ServerState]) -> ServerState:
    total = sum(s.server.weight for s in tier)
    for state in tier:
        state.current += state.server.weight
    best = max(tier, key=lambda s: s.current)
    best.current -= total
    return best


class Lane:
    """One lane's transport: the next server for each message, paced, with failover."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.conn: Connection | None = None
        self._lead = 0.0  # seconds from a booking to the final dot being ready (see _book)
        self._connections: dict[str, SmtpTransport] = {}

    def bind(self, conn: Connection) -> None:
        """The lane's database connection, for shared limits and health notes."""
        self.conn = conn

    def _wait(self, seconds: float) -> None:
        if seconds > 0 and self.pool.stop.wait(seconds):
            raise NotSent("stopped while waiting for the rate limit")

    def _book(self, limit: SharedLimit, *, count: bool = True) -> list[float]:
        """A slot for one message (its quota counted unless `count` is False): [the
        time.monotonic() its final dot may leave at, when it was booked]. A first booking
        leaves room for the envelope's round trip, as long as this lane's last ones took."""
        assert self.conn is not None
        lead = self._lead if count else 0.0
        while True:
            wait, booked, since = limit.book(self.conn, count=count, lead=lead)
            if booked:
                return [since + wait, time.monotonic()]
            self._wait(wait - (time.monotonic() - since))

    def _gate(self, limit: SharedLimit, slot: list[float]) -> None:
        """Before the final dot: wait for the slot; a slot missed by more than LATE (a long
        round trip, a busy machine) is given back for the next free one, so a late message
        never lands next to the ones booked after it."""
        # How long the envelope took since the booking (a moving average, at most a second).
        took = time.monotonic() - slot[1]
        self._lead = min(1.0, 0.8 * self._lead + 0.2 * took)
        while True:
            self._wait(slot[0] - time.monotonic())
            if time.monotonic() - slot[0] <= LATE:
                return
            slot[:] = self._book(limit, count=False)

    def send(
        self,
        *,
        sender: str,
        recipient: str,
        data: bytes,
        meanwhile: Callable[[], None] | None = None,
    ) -> Outcome:
        pool = self.pool
        tried: set[str] = set()
        last: Outcome | None = None
        quota: QuotaReached | None = None
        refused: SetupError | None = None
        while True:
            state = pool.acquire(tried)
            if state is None:
                break
            health: str | None = None
            try:
                gate: Callable[[], None] | None = None
                try:
                    if self.conn is not None and state.limit.paced(self.conn):
                        gate = partial(self._gate, state.limit, self._book(state.limit))
                    else:
                        state.limit.started()
                except QuotaReached as exc:
                    if exc.until - time.time() <= min(QUOTA_WAIT, exc.length / 10):
                        self._wait(exc.until - time.time())  # the window opens in a moment
                        continue
                    quota = exc
                    tried.add(state.name)
                    continue
                try:
                    outcome = self._connection(state.server).send(
                        sender=sender,
                        recipient=recipient,
                        data=data,
                        meanwhile=meanwhile,
                        gate=gate,
                    )
                except SetupError as exc:
                    # Out before its slot is given back: no other lane tries the same login.
                    refused = exc
                    tried.add(state.name)
                    health = pool.take_out(state, str(exc))
                    if pool.others(tried):
                        continue
                    break
                outcome = replace(outcome, server=state.name)
                health = pool.answered(state, outcome, tried, self.conn)
                if outcome.untried and pool.others(tried | {state.name}):
                    tried.add(state.name)
                    last = outcome
                    continue
                pool.verdict(outcome)
                return outcome
            finally:
                pool.release(state)
                if health is not None:
                    pool.note(self.conn, state, health)
        if refused is not None and quota is None:
            raise refused
        if quota is not None:
            raise NotSent(str(quota), halt=f"waiting: {quota}", quota=(quota.server, quota.until))
        if last is not None:
            pool.verdict(last)
            return last
        if pool.stop.is_set() or not pool.running():
            raise NotSent("stopped")
        # Whoever took the last server out reports why (the pass's breaker); this note
        # stands only if nothing else stopped the pass.
        reasons = "; ".join(f"{s.name}: {s.down_reason}" for s in pool.states if s.down_reason)
        raise NotSent(
            "no server", halt=f"{STOP}every mail server failed ({reasons})", fallback=True
        )

    def _connection(self, server: SmtpServer) -> SmtpTransport:
        found = self._connections.get(server.name)
        if found is None:
            found = self._connections[server.name] = self.pool.connection(server)
        return found

    def close(self) -> None:
        connections, self._connections = self._connections, {}
        for transport in connections.values():
            transport.close()


class OneOff:
    """One message outside a pass (an account notice, a test send): the same servers, by
    priority and weight, failing over to the next when one is down. Nothing to put back:
    when no server takes it, the message failed (its sender says so to whoever asked)."""

    def __init__(self, pool: Pool) -> None:
        self.lane = Lane(pool)

    def send(
        self,
        *,
        sender: str,
        recipient: str,
        data: bytes,
        meanwhile: Callable[[], None] | None = None,
    ) -> Outcome:
        try:
            return self.lane.send(
                sender=sender, recipient=recipient, data=data, meanwhile=meanwhile
            )
        except NotSent as exc:
            return Outcome(FAILED, None, exc.halt or str(exc))

    def close(self) -> None:
        self.lane.close()


# One pool per settings for one-off messages, so a server found down stays out of rotation
# for the next notice too (its probe interval), instead of costing every notice a timeout.
_one_off_pools: list[tuple[Settings, Pool]] = []
_one_off_lock = threading.Lock()


def one_off(settings: Settings) -> Transport:
    """The transport for one message outside a pass (see OneOff); the outbox if configured."""
    if settings.delivery.transport != "smtp":
        return OutboxTransport(
            settings.delivery.outbox_dir, max_bytes=settings.render.max_message_bytes
        )
    with _one_off_lock:
        found = [pool for known, pool in _one_off_pools if known is settings]
        if not found:
            found = [Pool(settings)]
            _one_off_pools.append((settings, found[0]))
            del _one_off_pools[:-4]
    return OneOff(found[0])
