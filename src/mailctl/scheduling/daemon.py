"""`mailctl daemon`: APScheduler decides when to wake up; mailctl's tables hold all state.

APScheduler cannot share a job store between processes, so its jobs live in memory and only
tick. What is due, who sends it and what was sent are in the database, and its claims
(`runs.start_run`, `ledger.claim_batch`) keep several daemons, cron and people apart.

Two jobs run on a small thread pool: the pass (start due runs, deliver, settle) and the
heartbeat, which keeps beating while a long pass is sending. After each pass the pass job is
moved to the next due time from the database, or to now + tick_seconds if that is sooner.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from mailctl.config import Settings
from mailctl.db import utcnow
from mailctl.errors import MailctlError
from mailctl.schedule import Clock
from mailctl.scheduling import heartbeat
from mailctl.services import delivery
from mailctl.services.delivery import Sender, Summary, new_worker_id

log = logging.getLogger("mailctl.daemon")

KIND = "daemon"
PASS_JOB = "pass"
HEARTBEAT_JOB = "heartbeat"
BOUNCES_JOB = "bounces"
# A pass that fails (database down, locked, not initialised) is retried after tick * 2**n,
# at most this long: a little patience, never a crash loop.
MAX_BACKOFF = 300.0
# While a stop waits for the pass in flight, it says what it is waiting for this often.
STOP_REPORT_EVERY = 5.0


def describe(exc: BaseException) -> str:
    """One readable line for the log, whatever failed."""
    if isinstance(exc, MailctlError):
        return str(exc)
    if isinstance(exc, DBAPIError):
        text = str(exc.orig) if exc.orig is not None else str(exc)
        return f"database error: {text.splitlines()[0] if text else type(exc).__name__}"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def summary_line(summary: Summary) -> str:
    return f"runs started {summary.runs_started}; {summary.counts_line()}"


class Daemon:
    """One scheduler process. `run()` blocks until SIGTERM/SIGINT or `request_stop()`."""

    def __init__(self, engine: Engine, settings: Settings, *, worker: str | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = Clock.from_settings(settings)
        self.tick_seconds = max(float(settings.scheduler.tick_seconds), 0.1)
        # Both the workers row and the ledger's claimed_by hold at most 120 characters.
        self.worker = (worker or new_worker_id(KIND))[:120]
        self.stop = threading.Event()
        self.failures = 0
        self.schema_ok = False
        self._pass_lock = threading.Lock()
        self._sender: Sender | None = None  # the pass's sender, while a pass runs
        self._beat_failing = False
        self._scheduler: Any = None

    # -- one tick -------------------------------------------------------------------------

    def backoff(self) -> float:
        # Capped doublings: past 2**30 the ceiling has long been reached, and a float never
        # overflows however long the outage.
        doubled = self.tick_seconds * float(2 ** min(max(self.failures - 1, 0), 30))
        return min(doubled, max(MAX_BACKOFF, self.tick_seconds))

    def wake_time(self, due: datetime | None, *, busy: bool, now: datetime) -> datetime:
        """min(next due time, now + tick); something already due again only wakes us soon
        when the last pass did work (else a row leased by someone else would spin us)."""
        latest = now + timedelta(seconds=self.tick_seconds)
        if due is None:
            return latest
        if due <= now:
            return now + timedelta(seconds=min(1.0, self.tick_seconds)) if busy else latest
        return min(due, latest)

    def tick(self) -> datetime:
        """Run one pass and return when to wake next. Never raises."""
        try:
            if not self.schema_ok:
                from mailctl.migrations import require_current

                require_current(self.engine)
                self.schema_ok = True
            summary = self._run_pass()
            self._send_webhooks()
            due = delivery.next_due(self.engine)
        except Exception as exc:
            self.failures += 1
            delay = self.backoff()
            log.error("pass failed: %s; next try in %gs", describe(exc), delay)
            log.debug("pass failure details", exc_info=True)
            return utcnow() + timedelta(seconds=delay)
        if self.failures:
            log.info("database reachable again after %d failed passes", self.failures)
            self.failures = 0
        busy = summary.busy
        if busy:
            log.info("pass: %s", summary_line(summary))
        if summary.stopped:
            log.warning("pass stopped early: %s", summary.stopped)
        wake = self.wake_time(due, busy=busy, now=utcnow())
        log.debug("next wake-up at %s", wake.isoformat(timespec="seconds"))
        return wake

    def _send_webhooks(self) -> None:
        """The webhook queue, after the mail: a receiver that is down never stops a pass."""
        from mailctl.services import webhooks  # httpx: loaded by the daemon, not by `status`

        try:
            sent = webhooks.deliver_due(engine=self.engine, settings=self.settings)
        except Exception as exc:
            log.error("webhooks not sent this tick: %s", describe(exc))
            return
        if sent.busy:
            log.info("webhooks: %d delivered, %d failed", sent.delivered, sent.failed)

    def _run_pass(self) -> Summary:
        # Our own sender, so that a stop can say which message it is waiting for.
        sender = Sender(self.engine, self.settings, worker=self.worker, stop=self.stop)
        self._sender = sender
        try:
            return delivery.run_pass(
                engine=self.engine,
                settings=self.settings,
                clock=self.clock,
                worker=self.worker,
                stop=self.stop,
                sender=sender,
            )
        finally:
            self._sender = None
            sender.close()

    def waiting_for(self) -> str | None:
        """What a stop has to wait for now, in words; None when nothing is running."""
        sender = self._sender
        in_flight = sender.in_flight if sender is not None else None
        if in_flight is not None:
            return in_flight.describe()
        if self._pass_lock.locked():
            return "the pass in progress to record its last outcome and release its claims"
        return None

    def beat(self, state: str = heartbeat.RUNNING) -> None:
        try:
            heartbeat.beat(self.engine, worker=self.worker, kind=KIND, state=state)
        except Exception as exc:
            if not self._beat_failing:
                log.warning("heartbeat not recorded: %s", describe(exc))
            self._beat_failing = True
            return
        if self._beat_failing:
            log.info("heartbeat recorded again")
        self._beat_failing = False

    # -- APScheduler jobs -----------------------------------------------------------------

    def _pass_job(self) -> None:
        with self._pass_lock:
            if self.stop.is_set():
                self._shutdown_scheduler()
                return
            # No firing while we work (it would only be skipped, with a warning).
            self._move_job(None)
            wake: datetime | None = None
            try:
                wake = self.tick()
            finally:
                if not self.stop.is_set():
                    self._move_job(wake or utcnow() + timedelta(seconds=self.tick_seconds))

    def _beat_job(self) -> None:
        if self.stop.is_set():
            self._shutdown_scheduler()
            return
        self.beat()

    def _bounces_job(self) -> None:
        """Fetch the bounce mailbox ([bounces] host), every bounces.fetch_every_seconds."""
        if self.stop.is_set():
            return
        from mailctl.services.bounce_mailbox import fetch_bounces

        try:
            tally = fetch_bounces(engine=self.engine, settings=self.settings)
        except Exception as exc:  # the mailbox down is a log line, never the daemon down
            log.error("bounce fetch failed: %s", describe(exc))
            return
        if tally.processed:
            log.info("bounces: %s", tally.line())

    def _move_job(self, when: datetime | None) -> None:
        from apscheduler.jobstores.base import JobLookupError
        from apscheduler.schedulers import SchedulerNotRunningError

        scheduler = self._scheduler
        if scheduler is None:
            return
        try:
            if when is None:
                scheduler.pause_job(PASS_JOB)
            else:
                scheduler.modify_job(PASS_JOB, next_run_time=when)
        except (JobLookupError, SchedulerNotRunningError):
            pass  # shutting down

    def _shutdown_scheduler(self) -> None:
        from apscheduler.schedulers import SchedulerNotRunningError

        scheduler = self._scheduler
        if scheduler is None:
            return
        try:
            # wait=False: shutdown(wait=True) holds the job-store lock while it waits, and a
            # pass that is just moving its job needs that lock. We wait for the pass ourselves.
            scheduler.shutdown(wait=False)
        except SchedulerNotRunningError:
            pass

    # -- lifecycle ------------------------------------------------------------------------

    def request_stop(self, reason: str = "stop requested") -> None:
        waiting = self.waiting_for()
        doing = f"waiting for {waiting}" if waiting else "nothing in flight"
        if self.stop.is_set():
            log.info("%s; already stopping, %s", reason, doing)
            return
        log.info("%s; stopping, %s", reason, doing)
        self.stop.set()
        # Not from the signal handler itself: it runs on the main thread, which may be
        # inside APScheduler holding its locks.
        threading.Thread(target=self._shutdown_scheduler, name="mailctl-stop", daemon=True).start()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        # Handled on a thread of its own: logging from the handler re-entered a log line the
        # main thread was writing when the signal came ("reentrant call" and a traceback).
        reason = f"received {signal.Signals(signum).name}"
        threading.Thread(
            target=self.request_stop, args=(reason,), name="mailctl-signal", daemon=True
        ).start()

    def run(self, *, install_signals: bool = True) -> int:
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.blocking import BlockingScheduler

        scheduler = BlockingScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(3)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        now = utcnow()
        scheduler.add_job(
            self._pass_job,
            "interval",
            seconds=self.tick_seconds,
            id=PASS_JOB,
            name="mailctl pass",
            next_run_time=now,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
        )
        scheduler.add_job(
            self._beat_job,
            "interval",
            seconds=self.tick_seconds,
            id=HEARTBEAT_JOB,
            name="mailctl heartbeat",
            next_run_time=now + timedelta(seconds=self.tick_seconds),
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
        )
        if self.settings.bounces.host:
            scheduler.add_job(
                self._bounces_job,
                "interval",
                seconds=self.settings.bounces.fetch_every_seconds,
                id=BOUNCES_JOB,
                name="mailctl bounce fetch",
                next_run_time=now,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=None,
            )
        self._scheduler = scheduler
        if install_signals:
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
        log.info(
            "daemon %s started: tick %gs, zone %s, transport %s",
            self.worker,
            self.tick_seconds,
            self.settings.scheduler.timezone,
            self.settings.delivery.transport,
        )
        self.beat()
        try:
            heartbeat.prune(self.engine, kind=KIND)
        except Exception as exc:
            log.debug("old heartbeats not pruned: %s", describe(exc))
        try:
            if not self.stop.is_set():
                scheduler.start()  # blocks until _shutdown_scheduler()
        finally:
            self.stop.set()
            self._finish()
        return 0

    def _finish(self) -> None:
        # The pass ends by itself: the sender stops between messages, and the message in
        # flight is bounded by delivery.attempt_deadline_seconds (the transport's watchdog).
        # "stopped" is only said once it has ended, and until then what it waits for.
        began = time.monotonic()
        while not self._pass_lock.acquire(timeout=STOP_REPORT_EVERY):
            waiting = self.waiting_for() or "the pass in progress"
            log.info("still waiting (%.0fs) for %s", time.monotonic() - began, waiting)
        self._pass_lock.release()
        try:
            delivery.release_claims(self.engine, self.worker)
        except Exception as exc:
            log.warning("claims not released (they expire with their lease): %s", describe(exc))
        self.beat(heartbeat.STOPPED)
        log.info("daemon %s stopped", self.worker)
