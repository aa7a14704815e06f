"""Scale-out fixtures: daemon subprocesses on one PostgreSQL database, a real SMTP sink that
notes which daemon sent each message (see tests/support/scaleout.py)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.engine import Engine, make_url

from mailctl.db import session_scope, utcnow
from mailctl.models import Client, User
from mailctl.schedule import Clock
from tests.support.env import PG_URL
from tests.support.scaleout import (
    SECRET,
    Cluster,
    DaemonProc,
    Daemons,
    EhloSink,
    Recorder,
    email_of,
)
from tests.support.smtp import free_port

# The clock every call here runs on: UTC wall time, real periods.
CLOCK = Clock(tz="UTC", period_seconds=None)


@pytest.fixture
def ehlo_sink() -> Iterator[EhloSink]:
    from aiosmtpd.controller import Controller

    recorder = Recorder()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    try:
        yield EhloSink(port, recorder)
    finally:
        controller.stop()


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
