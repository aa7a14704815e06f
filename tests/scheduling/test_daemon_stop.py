"""SIGTERM to a real `mailctl daemon` while the mail server sits on a message.

The daemon says what it waits for, waits for it (the attempt ends by its own deadline), and
logs "stopped" only when it really has: the process ends right after that line.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from tests.support.faultserver import FaultServer
from tests.support.ledger import delivery_states
from tests.support.procs import START_TIMEOUT, wait_for
from tests.support.smtp import smtp_env

SMTP_TIMEOUT = 4.0


@dataclass
class Daemon:
    popen: subprocess.Popen[str]
    lines: list[tuple[float, str]] = field(default_factory=list)  # (monotonic time, line)
    lock: threading.Lock = field(default_factory=threading.Lock)
    reader: threading.Thread | None = None

    def read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            with self.lock:
                self.lines.append((time.monotonic(), line.rstrip("\n")))

    def text(self) -> str:
        with self.lock:
            return "\n".join(line for _, line in self.lines)

    def first(self, needle: str) -> tuple[float, str]:
        with self.lock:
            for when, line in self.lines:
                if needle in line:
                    return when, line
        raise AssertionError(f"no {needle!r} in the daemon's log:\n{self.text()}")


@pytest.fixture
def daemon() -> Iterator[Callable[[dict[str, str]], Daemon]]:
    started: list[Daemon] = []

    def start(env: dict[str, str]) -> Daemon:
        full = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        popen = subprocess.Popen(
            [sys.executable, "-m", "mailctl", "daemon"],
            env=full,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        proc = Daemon(popen)
        proc.reader = threading.Thread(target=proc.read, daemon=True)
        proc.reader.start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.popen.poll() is None:
            proc.popen.kill()
        proc.popen.wait(timeout=30)
        if proc.reader is not None:
            proc.reader.join(timeout=10)
        assert proc.popen.stdout is not None
        proc.popen.stdout.close()


@pytest.mark.slow
def test_sigterm_waits_for_the_answer_and_says_stopped_only_when_it_has(
    engine, world, daemon
) -> None:
    with FaultServer("silent_after_dot") as server:
        mailing_id, emails = world.mailing(2)
        proc = daemon(
            smtp_env(
                server.port,
                smtp_timeout=SMTP_TIMEOUT,
                delivery_attempt_deadline_seconds=SMTP_TIMEOUT + 2,
            )
        )
        # The first message went out to the end; the server keeps it and says nothing.
        wait_for(lambda: server.received_rcpts(), timeout=START_TIMEOUT, what="the first message")
        time.sleep(0.3)
        term_at = time.monotonic()
        proc.popen.send_signal(signal.SIGTERM)
        code = proc.popen.wait(timeout=60)
        exit_at = time.monotonic()
        time.sleep(0.2)  # the reader thread takes the last lines

    assert code == 0, proc.text()
    _, said = proc.first("received SIGTERM")
    # Whichever of the two the ledger holds first (its rows come from one INSERT ... SELECT,
    # whose order PostgreSQL does not promise).
    assert any(
        f"waiting for the mail server's answer for the message to {email} "
        f"(mailing {mailing_id}), at most" in said
        for email in emails
    ), said
    stopped_at, stopped = proc.first("stopped")
    assert stopped.endswith("stopped") and "daemon " in stopped
    assert proc.lines[-1][1] == stopped, proc.text()  # nothing after it
    # It waited for the answer (the rest of the 4 s timeout), not for nothing...
    assert stopped_at - term_at > 1.5, proc.text()
    # ...and it said "stopped" when it had: the process ended right after (a bound, generous).
    assert exit_at - stopped_at < 3.0, proc.text()
    states = delivery_states(engine, mailing_id)
    assert states == {"unknown": 1, "pending": 1}, states  # the second was never started
    assert "Traceback" not in proc.text()


@pytest.mark.slow
def test_sigterm_with_nothing_in_flight_stops_at_once(engine, world, daemon) -> None:
    with FaultServer("ok") as server:
        proc = daemon(smtp_env(server.port))
        wait_for(lambda: "started" in proc.text(), timeout=START_TIMEOUT, what="the daemon")
        time.sleep(1.5)  # between passes
        term_at = time.monotonic()
        proc.popen.send_signal(signal.SIGTERM)
        code = proc.popen.wait(timeout=60)
        time.sleep(0.2)
    assert code == 0, proc.text()
    _, said = proc.first("received SIGTERM")
    assert "stopping, nothing in flight" in said or "waiting for" in said, said
    stopped_at, _ = proc.first("stopped")
    assert stopped_at - term_at < 10, proc.text()
