"""Scale-out on PostgreSQL: daemon subprocesses on one database, a sink that knows who sent.

Each daemon is `python -m mailctl daemon` with its own MAILCTL_* environment, the way each host
of a deployment has its own unit. The sink notes the EHLO name of every message, and every
daemon says its own name (smtp.local_hostname), so the test knows who sent what.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from tests.support.env import ON_POSTGRES
from tests.support.ledger import open_rows

needs_postgres = pytest.mark.skipif(
    not ON_POSTGRES, reason="set MAILCTL_TEST_DATABASE_URL to a PostgreSQL database"
)
SECRET = "scale-out-test-secret-shared-by-every-host"


@dataclass
class Recorder:
    """aiosmtpd handler: which recipient arrived, and from which daemon (its EHLO name).

    hold(helo, after): the message after `after` ones from that daemon is taken in, then its
    reply is held back until release() — the sender is certainly mid-message meanwhile.
    """

    received: list[tuple[str, str]] = field(default_factory=list)  # (recipient, helo)
    lock: threading.Lock = field(default_factory=threading.Lock)
    held: threading.Event = field(default_factory=threading.Event)
    held_rcpt: str = ""
    _hold: tuple[str, int] | None = None
    _release: threading.Event = field(default_factory=threading.Event)

    def hold(self, helo: str, after: int) -> None:
        self._hold = (helo, after)

    def release(self) -> None:
        self._release.set()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        helo = session.host_name or ""
        with self.lock:
            hold = (
                self._hold is not None
                and self._hold[0] == helo
                and not self.held.is_set()
                and sum(1 for _, h in self.received if h == helo) >= self._hold[1]
            )
            for rcpt in envelope.rcpt_tos:
                self.received.append((rcpt, helo))
            if hold:
                self.held_rcpt = envelope.rcpt_tos[0]
                self.held.set()
        if hold:
            while not self._release.is_set():
                await asyncio.sleep(0.05)
        return "250 2.0.0 OK queued"

    def count(self) -> int:
        with self.lock:
            return len(self.received)

    def per_recipient(self) -> Counter[str]:
        with self.lock:
            return Counter(r for r, _ in self.received)

    def per_sender(self) -> Counter[str]:
        with self.lock:
            return Counter(h for _, h in self.received)


@dataclass
class EhloSink:
    port: int
    recorder: Recorder


def email_of(i: int) -> str:
    return f"client{i:05d}@example.com"


def wait_until_done(
    engine: Engine, mailing_id: int, expected: int, *, timeout: float, check: Callable[[], None]
) -> None:
    """Wait for every ledger row of the mailing to reach a final state; check() each round."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        check()
        try:
            total, left = open_rows(engine, mailing_id)
        except Exception:  # the database may be restarting under us
            total, left = -1, -1
        if total == expected and left == 0:
            return
        time.sleep(0.5)
    raise AssertionError(f"mailing {mailing_id} not done in {timeout}s: {total} rows, {left} open")


@dataclass
class DaemonProc:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class Daemons:
    procs: list[DaemonProc]

    def check_alive(self) -> None:
        for d in self.procs:
            if not d.alive():
                raise AssertionError(
                    f"{d.name} exited with {d.proc.returncode}:\n{d.output()[-3000:]}"
                )

    def live(self) -> list[DaemonProc]:
        return [d for d in self.procs if d.alive()]

    def stop(self, d: DaemonProc, timeout: float = 30) -> int:
        d.proc.send_signal(signal.SIGTERM)
        return d.proc.wait(timeout)


@dataclass(frozen=True)
class Cluster:
    version: str
    name: str

    def ctl(self, action: str) -> None:
        subprocess.run(
            ["pg_ctlcluster", self.version, self.name, action],
            check=True,
            capture_output=True,
            timeout=120,
        )
