"""A per-key rate limit: a fixed window per key, in this process's memory.

In memory rather than in the shared disk cache: a counter on disk costs every call a write
(and a lock) that the panel's own pages do not pay, while one panel process is how mailctl
is served (`mailctl web` and `mailctl serve` run one uvicorn worker). Several processes would
each allow the limit.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from mailctl.errors import Throttled

_MAX_KEYS = 10_000  # windows of keys not seen for a while are dropped past this many


class RateLimit:
    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._lock = threading.Lock()
        self._windows: dict[int, tuple[float, int]] = {}  # key id: (window start, calls)

    def hit(self, key_id: int) -> None:
        """Count one call of this key; Throttled (with the seconds to wait) past the limit."""
        now = self.clock()
        with self._lock:
            start, calls = self._windows.get(key_id, (now, 0))
            if now - start >= self.window:
                start, calls = now, 0
            if calls >= self.limit:
                wait = max(1, math.ceil(start + self.window - now))
                raise Throttled(
                    f"this API key made {self.limit} calls in {self.window:g}s; "
                    f"try again in {wait}s",
                    retry_after=wait,
                )
            self._windows[key_id] = (start, calls + 1)
            if len(self._windows) > _MAX_KEYS:
                self._windows = {k: v for k, v in self._windows.items() if now - v[0] < self.window}
