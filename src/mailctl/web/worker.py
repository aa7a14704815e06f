"""The panel's in-process background sender: "send now" and due new mailings run here.

A request only queues the mailing and returns; SMTP never runs on the event loop or holds a
request open. The database claims (compare-and-set on the run, leases on ledger rows) keep
this pool, the daemon and cron's run-due from ever sending a client the same run twice.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_all

from sqlalchemy.engine import Engine

from mailctl.config import Settings
from mailctl.models import Mailing
from mailctl.schedule import Clock
from mailctl.services import delivery
from mailctl.services.delivery import Summary, new_worker_id

log = logging.getLogger(__name__)
THREADS = 2


class BackgroundSender:
    def __init__(self, engine: Engine, settings: Settings, *, threads: int = THREADS) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = Clock.from_settings(settings)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="mailctl-web-send")
        # Mailings queued but not started yet: a second click joins the queued pass.
        self._queued: dict[int, Future[Summary | None]] = {}
        self._futures: set[Future[Summary | None]] = set()
        self.submitted = 0  # passes queued since the start (a click that joined one is none)

    def submit(self, mailing_id: int) -> Future[Summary | None] | None:
        """Queue one pass over the mailing; None once shutting down."""
        with self._lock:
            if self._stop.is_set():
                return None
            queued = self._queued.get(mailing_id)
            if queued is not None:
                return queued
            future = self._pool.submit(self._run, mailing_id)
            self.submitted += 1
            self._queued[mailing_id] = future
            self._futures.add(future)
            future.add_done_callback(self._forget)
            return future

    def submit_if_due(self, mailing: Mailing) -> bool:
        """The panel's side of the start rule (services decide it): a mailing that is due when
        it is created, changed or re-enabled is queued at once. True when it is due."""
        if mailing.id is None or not delivery.is_due(mailing):
            return False
        self.submit(mailing.id)
        return True

    def _forget(self, future: Future[Summary | None]) -> None:
        with self._lock:
            self._futures.discard(future)
            for mid, queued in list(self._queued.items()):
                if queued is future:
                    del self._queued[mid]

    def _run(self, mailing_id: int) -> Summary | None:
        with self._lock:
            self._queued.pop(mailing_id, None)
        if self._stop.is_set():
            return None
        try:
            return delivery.run_pass(
                engine=self.engine,
                settings=self.settings,
                clock=self.clock,
                worker=new_worker_id("web"),
                mailing_id=mailing_id,
                stop=self._stop,
            )
        except Exception:
            # A failed pass must not take the panel down; what was left stays in the ledger
            # for the daemon, cron or the next click.
            log.exception("background send of mailing %s failed", mailing_id)
            return None

    def busy(self) -> bool:
        with self._lock:
            return bool(self._futures)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every queued pass is done (tests, shutdown); False on timeout."""
        with self._lock:
            pending = list(self._futures)
        _done, not_done = wait_all(pending, timeout=timeout)
        return not not_done

    def shutdown(self, *, wait: bool = True) -> None:
        # The stop event makes a running sender finish its current message and release its
        # claims; queued passes are dropped (their rows stay pending for the scheduler).
        self._stop.set()
        with self._lock:
            running = len(self._futures)
        if wait and running:
            log.info("waiting for %d background send(s) to finish the message in flight", running)
        self._pool.shutdown(wait=wait, cancel_futures=True)
        if wait and running:
            log.info("background sends stopped")
