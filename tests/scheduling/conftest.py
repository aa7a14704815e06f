"""Scheduling fixtures: a real SMTP sink, mailings in bulk, mailctl subprocesses, a fake crontab.

Everything waits by polling with generous deadlines: these tests must pass on a busy
two-core machine, where a subprocess can take seconds just to import.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from mailctl.db import session_scope, utcnow
from mailctl.models import Client, Delivery, Mailing, MailingRun, User
from mailctl.schedule import Clock
from mailctl.services.mailings import add_mailing
from mailctl.services.messages import add_message

START_TIMEOUT = 60.0  # a subprocess importing mailctl on a loaded machine
DELIVERY_TIMEOUT = 180.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(
    predicate: Callable[[], Any], *, timeout: float, interval: float = 0.1, what: str = ""
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what or predicate}")
        time.sleep(interval)


# -- SMTP sink --------------------------------------------------------------------------------


@dataclass
class Collector:
    """aiosmtpd handler: records every recipient with the time its message arrived."""

    delay: float = 0.0
    received: list[tuple[str, float]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            now = time.time()
            self.received.extend((rcpt, now) for rcpt in envelope.rcpt_tos)
        if self.delay:
            import asyncio

            await asyncio.sleep(self.delay)
        return "250 2.0.0 OK queued"

    def counts(self) -> Counter[str]:
        with self.lock:
            return Counter(r for r, _ in self.received)

    def total(self) -> int:
        with self.lock:
            return len(self.received)

    def times(self) -> list[float]:
        with self.lock:
            return [t for _, t in self.received]


@dataclass
class Sink:
    port: int
    handler: Collector
    controller: Any

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def start_sink() -> Iterator[Callable[..., Sink]]:
    from aiosmtpd.controller import Controller

    sinks: list[Sink] = []

    def start(port: int | None = None, *, delay: float = 0.0) -> Sink:
        handler = Collector(delay=delay)
        port = port or free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port, ready_timeout=30)
        controller.start()
        sink = Sink(port, handler, controller)
        sinks.append(sink)
        return sink

    yield start
    for sink in sinks:
        sink.stop()


# -- data -------------------------------------------------------------------------------------


@dataclass
class World:
    engine: Engine
    owner_id: int

    def mailing(
        self,
        clients: int,
        *,
        start: datetime | None = None,
        every: str = "once",
        end: datetime | None = None,
        clock: Clock = Clock(tz="Europe/Berlin", period_seconds=None),
    ) -> tuple[int, list[str]]:
        """A mailing over `clients` new clients (inserted in bulk); returns (id, emails)."""
        with session_scope(self.engine) as session:
            actor = session.get(User, self.owner_id)
            assert actor is not None
            base = session.execute(select(func.count()).select_from(Client)).scalar_one()
            emails = [f"c{base + i:05d}@example.com" for i in range(clients)]
            rows = [
                Client(owner_id=self.owner_id, email=e, email_key=e, full_name=f"Client {e[:6]}")
                for e in emails
            ]
            session.add_all(rows)
            session.flush()
            message = add_message(
                session=session, actor=actor, subject="Hi {{ client.full_name }}", body="Hello."
            )
            mailing = add_mailing(
                session=session,
                actor=actor,
                message_id=message.id or 0,
                start=start or utcnow(),
                end=end,
                every=every,
                client_ids=[r.id for r in rows if r.id is not None],
                clock=clock,
            )
            return mailing.id or 0, emails


@pytest.fixture
def world(engine: Engine, make_user: Callable[..., User]) -> World:
    admin = make_user("admin", email="ops@example.com")
    owner = make_user("user", email="owner@example.com")
    assert admin.id and owner.id
    return World(engine, owner.id)


def delivery_states(engine: Engine, mailing_id: int | None = None) -> Counter[str]:
    stmt = select(Delivery.state, func.count()).group_by(Delivery.state)
    if mailing_id is not None:
        stmt = stmt.where(Delivery.mailing_id == mailing_id)
    with engine.connect() as conn:
        return Counter({state: n for state, n in conn.execute(stmt)})


def sent_per_client(engine: Engine, mailing_id: int) -> Counter[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(Delivery.email).where(
                Delivery.mailing_id == mailing_id, Delivery.state == "sent"
            )
        ).scalars()
        return Counter(rows)


def runs_of(engine: Engine, mailing_id: int) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(MailingRun.__table__)  # type: ignore[attr-defined]
            .where(MailingRun.mailing_id == mailing_id)
            .order_by(MailingRun.scheduled_at)  # type: ignore[arg-type]
        ).mappings()
        return [dict(r) for r in rows]


def mailing_row(engine: Engine, mailing_id: int) -> dict[str, Any]:
    with engine.connect() as conn:
        row = (
            conn.execute(
                select(Mailing.__table__).where(Mailing.id == mailing_id)  # type: ignore[attr-defined]
            )
            .mappings()
            .one()
        )
        return dict(row)


# -- subprocesses -----------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def terminate(self, timeout: float = 30.0) -> tuple[int, float]:
        """SIGTERM; returns (exit code, seconds it took to exit)."""
        began = time.monotonic()
        self.popen.send_signal(signal.SIGTERM)
        code = self.popen.wait(timeout=timeout)
        return code, time.monotonic() - began

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout=timeout)


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Proc]]:
    """Start `python -m mailctl ARGS` with the test's environment plus `env`."""
    procs: list[Proc] = []

    def start(*args: str, env: dict[str, str] | None = None, name: str = "") -> Proc:
        full_env = os.environ.copy()
        full_env.update(env or {})
        full_env["PYTHONUNBUFFERED"] = "1"
        label = name or args[0]
        log_path = tmp_path / f"{label}-{len(procs)}.log"
        with log_path.open("wb") as out:
            popen = subprocess.Popen(
                [sys.executable, "-m", "mailctl", *args],
                env=full_env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        proc = Proc(label, popen, log_path)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.alive():
            proc.popen.kill()
            proc.popen.wait(timeout=30)


def smtp_env(port: int, **extra: object) -> dict[str, str]:
    env: dict[str, object] = {
        "DELIVERY_TRANSPORT": "smtp",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": port,
        "SMTP_TIMEOUT": 10,
        "DELIVERY_ATTEMPT_DEADLINE_SECONDS": 20,
        "DELIVERY_RETRY_FIRST_SECONDS": 1,
        "DELIVERY_RETRY_MAX_SECONDS": 2,
        "SCHEDULER_TICK_SECONDS": 1,
        "GENERAL_LOG_LEVEL": "INFO",
    }
    env.update({k.upper(): v for k, v in extra.items()})
    return {f"MAILCTL_{k}": str(v) for k, v in env.items()}


def worker_rows(engine: Engine) -> list[dict[str, Any]]:
    from mailctl.models import Worker

    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(Worker.__table__)).mappings()]  # type: ignore[attr-defined]


def daemon_ready(engine: Engine, proc: Proc) -> Callable[[], bool]:
    """True once the daemon has written its heartbeat (it is up and ticking)."""

    def check() -> bool:
        if not proc.alive():
            raise AssertionError(f"the daemon exited early:\n{proc.log()}")
        return any(w["pid"] == proc.popen.pid for w in worker_rows(engine))

    return check


def later(seconds: float) -> datetime:
    return utcnow() + timedelta(seconds=seconds)


# -- a fake crontab ---------------------------------------------------------------------------

FAKE_CRONTAB = """#!/bin/sh
# Stands in for cron's crontab(1): keeps the table in one file.
TABLE='{table}'
case "$1" in
  -l) if [ -f "$TABLE" ]; then cat "$TABLE"; else echo "no crontab for $(id -un)" >&2; exit 1; fi ;;
  -) cat > "$TABLE" ;;
  -r) rm -f "$TABLE" ;;
  *) echo "usage: crontab [-l|-r|-]" >&2; exit 2 ;;
esac
"""


@pytest.fixture
def fake_crontab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `crontab` command first on PATH; returns the file holding the table."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    table = tmp_path / "crontab.txt"
    script = bin_dir / "crontab"
    script.write_text(FAKE_CRONTAB.format(table=table))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return table
