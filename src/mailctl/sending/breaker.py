"""The circuit breaker: a pass stops when the mail server is in trouble for everyone.

Trouble is a run of attempts in a row that the server did not answer properly: it could not
be reached, timed out or spoke nonsense before the message (deferred, retried later), or
took the message and then said nothing (unknown: maybe delivered, so never resent by
itself). The last kind is the costly one: at a 30 s timeout a silent server would cost
8 hours per 1,000 recipients and leave every one of them unknown.

After a pass stopped this way, the next one starts half-open: its first attempt decides.
One more failure stops it at once, so a server that stays down costs one attempt per pass,
not a full count; an attempt that goes through closes the breaker again.
"""

from __future__ import annotations

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
        self.half_open = False
        self._answered = False  # the server answered properly once in this pass

    def probe(self, notes: Iterable[str | None]) -> None:
        """Start half-open if a mailing about to be sent was stopped by the breaker before."""
        if not self._answered and any(n and n.startswith(STOP) for n in notes):
            self.half_open = True

    def record(self, outcome: Outcome) -> str | None:
        """Count one outcome; the reason to stop the pass, or None to go on."""
        kind = _trouble(outcome)
        if kind is None:
            self.count, self.kinds, self.half_open, self._answered = 0, set(), False, True
            return None
        self.count += 1
        self.kinds.add(kind)
        if self.count < (1 if self.half_open else self.limit):
            return None
        n = self.count
        if self.kinds == {"connection"}:
            what = f"{n} consecutive connection failure{'s' if n > 1 else ''}"
        elif self.kinds == {"silence"}:
            what = f"{n} consecutive message{'s' if n > 1 else ''} with no reply from the server"
        else:
            what = f"{n} consecutive failed attempts"
        again = " as the previous pass did" if self.half_open else ""
        return f"{STOP}{what}{again} ({outcome.reply}); the rest waits for the next pass"
