"""The panel's client imports, run in a background thread so that a big file never holds a
request open; its progress page reads the job's counters.

An upload is copied to a temporary file (never held in memory) and imported from there by
the same streaming service the CLI uses. A small file is done before the upload's request
has waited WAIT_SECONDS, and its result is shown at once; a bigger one redirects to a page
that refreshes itself (a meta refresh: the panel's CSP allows no inline script) until the
result is in. Jobs live in this process (the panel runs as one), each visible only to the
user who started it, and are forgotten KEEP_SECONDS after they end.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Engine

from mailctl.db import session_scope
from mailctl.errors import MailctlError
from mailctl.models import User
from mailctl.services.client_import import ImportProgress, ImportReport, import_stream

log = logging.getLogger(__name__)
WAIT_SECONDS = 2.0
KEEP_SECONDS = 3600
THREADS = 1  # imports queue behind one another: each is one long write transaction


@dataclass
class ImportJob(ImportProgress):
    id: str
    user_id: int
    path: Path  # the uploaded file, removed once imported
    size: int  # bytes of the file
    strict: bool
    started: float = field(default_factory=time.monotonic)
    rows_read: int = 0
    position: int = 0  # bytes read so far
    ended: float | None = None
    report: ImportReport | None = None
    problem: str | None = None  # why it failed: nothing was imported
    future: Future[None] | None = None

    @property
    def running(self) -> bool:
        return self.ended is None

    @property
    def percent(self) -> int:
        return min(100, round(100 * self.position / self.size)) if self.size else 100

    @property
    def rate(self) -> float:
        """Rows per second so far."""
        return self.rows_read / max((self.ended or time.monotonic()) - self.started, 1e-6)

    @property
    def eta_seconds(self) -> int | None:
        """Seconds left at the pace so far, by the bytes read (None before a batch is in)."""
        if not self.running or not self.position:
            return None
        elapsed = time.monotonic() - self.started
        return max(0, round(elapsed * (self.size - self.position) / self.position))

    def rows(self, done: int, position: int) -> None:
        self.rows_read, self.position = done, position


class ImportJobs:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._jobs: dict[str, ImportJob] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="mailctl-import")

    def start(self, *, user: User, path: Path, strict: bool) -> ImportJob:
        """Import the file at `path` (a temporary file, removed when done) as `user`."""
        assert user.id is not None
        job = ImportJob(
            id=secrets.token_urlsafe(16),
            user_id=user.id,
            path=path,
            size=path.stat().st_size,
            strict=strict,
        )
        with self._lock:
            self._forget_old()
            self._jobs[job.id] = job
            job.future = self._pool.submit(self._run, job)
        return job

    def get(self, job_id: str, user: User) -> ImportJob | None:
        """The job, if this user started it (anyone else's is not found)."""
        with self._lock:
            job = self._jobs.get(job_id)
        return job if job is not None and job.user_id == user.id else None

    def _run(self, job: ImportJob) -> None:
        try:
            with session_scope(self.engine, readonly=True) as session:
                actor = session.get(User, job.user_id)
            if actor is None:
                raise MailctlError("your account is gone")
            # A transaction a batch (strict: one for the whole file, a savepoint).
            with job.path.open("rb") as stream, session_scope(self.engine) as session:
                job.report = import_stream(
                    session=session,
                    actor=actor,
                    stream=stream,
                    strict=job.strict,
                    progress=job,
                    commit_batches=True,
                )
        except MailctlError as exc:
            job.problem = str(exc)
        except Exception:
            log.exception("client import %s failed", job.id)
            job.problem = "the import failed on an internal error; nothing was imported"
        finally:
            job.ended = time.monotonic()
            job.path.unlink(missing_ok=True)

    def _forget_old(self) -> None:
        now = time.monotonic()
        for key, job in list(self._jobs.items()):
            if job.ended is not None and now - job.ended > KEEP_SECONDS:
                del self._jobs[key]

    def shutdown(self) -> None:
        """Let running imports finish (a strict one is one transaction: stopping it half-way
        would only roll it back) and refuse new ones."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            for job in self._jobs.values():
                if job.ended is None:  # queued, never begun
                    job.problem = "the panel stopped before this import began; nothing was imported"
                    job.ended = time.monotonic()
                    job.path.unlink(missing_ok=True)
