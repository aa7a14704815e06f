"""Scale-out fixtures: daemon subprocesses on one PostgreSQL database, a real SMTP sink.

Each daemon is `python -m mailctl daemon` with its own MAILCTL_* environment, the way each host
of a deployment has its own unit. The sink notes the EHLO name of every message, and every
daemon says its own name (smtp.local_hostname), so the test knows who sent what.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.engine import Engine, make_url

from mailctl.db import session_scope, utcnow
from mailctl.models import Client, Delivery, DeliveryAttempt, User
from mailctl.models.delivery import OPEN
from mailctl.schedule import Clock

# The clock every call here runs on: UTC wall time, real periods.
CLOCK = Clock(tz="UTC", period_seconds=None)

PG_URL = os.environ.get("MAILCTL_TEST_DATABASE_URL", "")
ON_POSTGRES = PG_URL.startswith("postgresql")
needs_postgres = pytest.mark.skipif(
    not ON_POSTGRES, reason="set MAILCTL_TEST_DATABASE_URL to a PostgreSQL database"
)
SECRET = "scale-out-test-secret-shared-by-every-host"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the sink ---------------------------------------------------------------------------------


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
class Sink:
    port: int
    recorder: Recorder


@pytest.fixture
def sink() -> Iterator[Sink]:
    from aiosmtpd.controller import Controller

    recorder = Recorder()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    try:
        yield Sink(port, recorder)
    finally:
        controller.stop()


# -- a big mailing ----------------------------------------------------------------------------


def email_of(i: int) -> str:
    return f"client{i:05d}@example.com"


@pytest.fixture
def big_mailing(engine: Engine, make_user: Callable[..., User]) -> Callable[[int], int]:
    """make(n): a one-off mailing due now to n clients (bulk-inserted); returns its id."""
    from mailctl.services.mailings import add_mailing
    from mailctl.services.messages import add_message

    owner = make_user("user", email="bulk@example.com")

    def make(n: int) -> int:
        now = utcnow()
        with session_scope(engine) as session:
            actor = session.get(User, owner.id)
            assert actor is not None
            # One executemany (psycopg pipelines it), not n ORM objects.
            session.execute(
                insert(Client),
                [
                    {
                        "owner_id": owner.id,
                        "email": email_of(i),
                        "email_key": email_of(i),
                        "full_name": f"Client {i}",
                        "comment": "",
                        "created_at": now,
                    }
                    for i in range(n)
                ],
            )
            message = add_message(
                session=session,
                actor=actor,
                subject="News for {{ client.full_name }}",
                body="Hello {{ client.full_name }}, this is for {{ client.email }}.\n",
            )
            mailing = add_mailing(
                session=session,
                actor=actor,
                message_id=message.id or 0,
                start=utcnow(),
                all_clients=True,
                clock=CLOCK,
            )
            return mailing.id or 0

    return make


def open_rows(engine: Engine, mailing_id: int) -> tuple[int, int]:
    """(rows in the ledger, rows still pending/sending/deferred) for one mailing."""
    with engine.connect() as conn:
        total = conn.execute(
            select(func.count()).select_from(Delivery).where(Delivery.mailing_id == mailing_id)
        ).scalar_one()
        left = conn.execute(
            select(func.count())
            .select_from(Delivery)
            .where(Delivery.mailing_id == mailing_id, Delivery.state.in_(OPEN))  # type: ignore[attr-defined]
        ).scalar_one()
    return int(total), int(left)


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


def ledger_states(engine: Engine, mailing_id: int) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(Delivery.email, Delivery.state).where(Delivery.mailing_id == mailing_id)
        ).all()
    return {email: state for email, state in rows}


def attempt_statuses(engine: Engine, mailing_id: int) -> dict[str, Counter[str]]:
    """email -> how many log rows of each status."""
    out: dict[str, Counter[str]] = {}
    with engine.connect() as conn:
        for email, status in conn.execute(
            select(DeliveryAttempt.email, DeliveryAttempt.status).where(
                DeliveryAttempt.mailing_id == mailing_id
            )
        ):
            out.setdefault(email, Counter())[status] += 1
    return out


# -- the daemons ------------------------------------------------------------------------------


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


@pytest.fixture
def start_daemons(tmp_path: Path, engine: Engine) -> Iterator[Callable[..., Daemons]]:
    """start(n, smtp_port, **settings): n daemon processes, each with its own environment."""
    started: list[DaemonProc] = []

    def start(n: int, smtp_port: int, **extra: object) -> Daemons:
        procs = []
        for i in range(1, n + 1):
            name = f"daemon-{i}"
            home = tmp_path / name
            home.mkdir()
            env = {k: v for k, v in os.environ.items() if not k.startswith("MAILCTL_")}
            settings: dict[str, object] = {
                "CONFIG": home / "mailctl.toml",
                "GENERAL_DATA_DIR": home / "data",
                "GENERAL_LOG_LEVEL": "INFO",
                "DATABASE_URL": PG_URL,
                "DATABASE_POOL_SIZE": 2,
                "DATABASE_MAX_OVERFLOW": 2,
                "SCHEDULER_TIMEZONE": "Europe/Berlin",
                "SCHEDULER_TICK_SECONDS": 1,
                "DELIVERY_TRANSPORT": "smtp",
                "DELIVERY_BATCH_SIZE": 50,
                "DELIVERY_LEASE_SECONDS": 3,
                "DELIVERY_RETRY_FIRST_SECONDS": 1,
                "DELIVERY_FROM_ADDRESS": "news@example.org",
                "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": smtp_port,
                "SMTP_TIMEOUT": 10,
                "SMTP_LOCAL_HOSTNAME": name,
                "WEB_BASE_URL": "https://mail.example.org",
                "WEB_SECRET_KEY": SECRET,
            }
            settings.update({k.upper(): v for k, v in extra.items()})
            (home / "mailctl.toml").write_text("")
            env.update({f"MAILCTL_{k}": str(v) for k, v in settings.items()})
            log = home / "daemon.log"
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "mailctl", "daemon"],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=home,
                )
            d = DaemonProc(name, proc, log)
            started.append(d)
            procs.append(d)
        daemons = Daemons(procs)
        _wait_for_heartbeats(engine, daemons, n)
        return daemons

    yield start
    for d in started:
        if d.alive():
            d.proc.send_signal(signal.SIGTERM)
    for d in started:
        try:
            d.proc.wait(30)
        except subprocess.TimeoutExpired:
            d.proc.kill()
            d.proc.wait(10)


def _wait_for_heartbeats(engine: Engine, daemons: Daemons, n: int, timeout: float = 60) -> None:
    """Every daemon has started and beaten once: the big mailing then finds them all ready."""
    from mailctl.models import Worker

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        daemons.check_alive()
        with engine.connect() as conn:
            beating = conn.execute(
                select(func.count()).select_from(Worker).where(Worker.state == "running")
            ).scalar_one()
        if beating >= n:
            return
        time.sleep(0.2)
    raise AssertionError(f"only {beating} of {n} daemons started within {timeout}s")


# -- the local PostgreSQL server ------------------------------------------------------------


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


@pytest.fixture
def local_cluster() -> Cluster:
    """The Debian cluster behind MAILCTL_TEST_DATABASE_URL, when this test may restart it."""
    url = make_url(PG_URL)
    if url.host not in ("127.0.0.1", "localhost", "::1"):
        pytest.skip("the test database is not on this machine")
    if shutil.which("pg_lsclusters") is None or os.geteuid() != 0:
        pytest.skip("restarting PostgreSQL needs root and Debian's pg_ctlcluster")
    port = str(url.port or 5432)
    listing = subprocess.run(
        ["pg_lsclusters", "-h"], check=True, capture_output=True, text=True
    ).stdout
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[2] == port and fields[3] == "online":
            return Cluster(fields[0], fields[1])
    pytest.skip(f"no online Debian cluster on port {port}")
