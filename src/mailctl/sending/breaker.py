"""The circuit breaker: a pass stops when the mail server is in trouble for everyone.

Trouble is a run of attempts in a row that the server did not answer properly: it could not
be reached, timed out or spoke nonsense before the message (deferred, retried later), or
took the message and then said nothing (unknown: maybe delivered, so never resent by
itself). The last kind is the costly one: at a 30 s timeout a silent server would cost
8 hours per 1,000 recipients and leave every one of them unknown.

A server that answers now and then defeats a count of troubles in a row: one silent after
every other message costs a timeout per two recipients and leaves half of them unknown. So
trouble in `limit` of the last 2 x `limit` attempts stops the pass too.

After a pass stopped this way, the next one starts half-open: its first attempt decides.
One more failure stops it at once, so a server that stays down costs one attempt per pass,
not a full count; an attempt that goes through closes the breaker again.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from mailctl.sending.transport import UNKNOWN, Outcome

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
