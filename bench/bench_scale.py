"""Scale-out benchmark: one mailing of 20,000 clients sent by 1, 2 and 3 daemons.

Every figure comes from the same run on the same machine: PostgreSQL with 1, 2 and 3
`mailctl daemon` processes (throughput printed as a ratio to the single daemon), and SQLite
with one daemon. The mail server is Postfix's `smtp-sink` when installed (a C program that
accepts and discards; it costs almost no CPU), else an aiosmtpd sink in this process.

Throughput is recipients per second from the moment the mailing is committed (due at once)
to the last attempt in the log: it includes the daemons noticing the run (tick 1 s), starting
it (20,000 ledger rows in one INSERT ... SELECT) and sending every message over SMTP. The CPU
columns are the share of one core each party used meanwhile (from /proc), which is what
explains the ratios on a small machine.

    MAILCTL_BENCH_DATABASE_URL=postgresql+psycopg://mailctl:mailctl@127.0.0.1:5432/mailctl_test \\
        python bench/bench_scale.py [--clients 20000] [--daemons 1,2,3] [--rounds 3]

The PostgreSQL database's schema `public` is dropped and recreated for every measurement
(MAILCTL_TEST_DATABASE_URL is used when MAILCTL_BENCH_DATABASE_URL is unset).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.engine import Engine

from mailctl.schedule import Clock

sys.path.insert(0, str(Path(__file__).parent))
from benchlib import load_average, spread  # noqa: E402

# The clock every call here runs on: UTC wall time, real periods.
CLOCK = Clock(tz="UTC", period_seconds=None)

DEFAULT_PG = "postgresql+psycopg://mailctl:mailctl@127.0.0.1:5432/mailctl_test"
SECRET = "bench-secret-shared-by-every-daemon"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- CPU accounting from /proc ----------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its reaped children, in seconds (0 if gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # After the command: state is field 3; utime, stime, cutime, cstime are 14-17.
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / CLOCK_TICKS


def postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent not idle (all cores), from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:8]]
    user, nice, system, _idle, _iowait, irq, softirq = values
    return (user + nice + system + irq + softirq) / CLOCK_TICKS


class CpuMeter:
    """CPU used by the daemons, the PostgreSQL server (every backend), the sink, and
    everything else on the machine (other work competing for the same cores)."""

    def __init__(self, daemons: list[int], sink: int | None) -> None:
        self.groups = {"daemons": daemons, "sink": [sink] if sink else []}
        self.start = self._sample()
        self.busy_start = machine_busy_seconds()
        self.wall_start = time.monotonic()

    def _sample(self) -> dict[str, dict[int, float]]:
        sample = {name: {p: cpu_seconds(p) for p in pids} for name, pids in self.groups.items()}
        sample["postgres"] = {p: cpu_seconds(p) for p in postgres_pids()}
        return sample

    def used(self) -> dict[str, float]:
        end = self._sample()
        used = {
            name: sum(t - self.start[name].get(p, 0.0) for p, t in end[name].items())
            for name in end
        }
        busy = machine_busy_seconds() - self.busy_start
        used["other"] = max(busy - sum(used.values()), 0.0)
        used["wall"] = time.monotonic() - self.wall_start
        return used


# -- the mail sink ------------------------------------------------------------------------


@dataclass
class Sink:
    port: int
    pid: int | None
    kind: str


@contextmanager
def mail_sink() -> Iterator[Sink]:
    port = free_port()
    binary = shutil.which("smtp-sink") or (
        "/usr/sbin/smtp-sink" if Path("/usr/sbin/smtp-sink").exists() else None
    )
    if binary:
        argv = [binary]
        if os.geteuid() == 0:
            argv += ["-u", "nobody"]  # smtp-sink refuses to keep root privileges
        proc = subprocess.Popen(
            [*argv, f"127.0.0.1:{port}", "1000"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_port(port)
            yield Sink(port, proc.pid, "smtp-sink")
        finally:
            proc.terminate()
            proc.wait(10)
        return
    from aiosmtpd.controller import Controller

    class Discard:
        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            return "250 2.0.0 OK"

    controller = Controller(Discard(), hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    try:
        yield Sink(port, None, "aiosmtpd (in the benchmark process, not metered)")
    finally:
        controller.stop()


def _wait_port(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the sink did not listen on port {port}")


# -- one measurement ------------------------------------------------------------------------


@dataclass
class Result:
    backend: str
    daemons: int
    clients: int
    seconds: float
    sending_seconds: float
    cpu: dict[str, float]

    @property
    def rate(self) -> float:
        return self.clients / self.seconds


def fresh_database(url: str, workdir: Path) -> Engine:
    from mailctl import migrations

    if url.startswith("postgresql"):
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        admin.dispose()
        engine = create_engine(url)
    else:
        engine = create_engine(url)
    migrations.upgrade(engine)
    return engine


def seed(engine: Engine, clients: int) -> tuple[int, int]:
    """A user with `clients` clients and a message; returns (user id, message id)."""
    from sqlmodel import Session

    from mailctl.db import utcnow
    from mailctl.models import Client, Message, User

    now = utcnow()
    with Session(engine) as session:
        user = User(email="bench@example.com", role="user", is_active=True, is_verified=True)
        session.add(user)
        session.flush()
        session.execute(
            insert(Client),
            [
                {
                    "owner_id": user.id,
                    "email": f"c{i:06d}@example.com",
                    "email_key": f"c{i:06d}@example.com",
                    "full_name": f"Client {i}",
                    "comment": "",
                    "created_at": now,
                }
                for i in range(clients)
            ],
        )
        message = Message(
            owner_id=user.id or 0,
            subject="News for {{ client.full_name }}",
            body="Hello {{ client.full_name }},\n\nthis month's news for {{ client.email }}.\n",
        )
        session.add(message)
        session.commit()
        return user.id or 0, message.id or 0


def add_due_mailing(engine: Engine, user_id: int, message_id: int) -> tuple[int, datetime]:
    from sqlmodel import Session

    from mailctl.db import utcnow
    from mailctl.models import User
    from mailctl.services.mailings import add_mailing

    with Session(engine) as session:
        actor = session.get(User, user_id)
        assert actor is not None
        mailing = add_mailing(
            session=session,
            actor=actor,
            message_id=message_id,
            start=utcnow(),
            all_clients=True,
            clock=CLOCK,
        )
        session.commit()
        return mailing.id or 0, utcnow()


def daemon_env(url: str, home: Path, name: str, smtp_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILCTL_")}
    home.mkdir(parents=True, exist_ok=True)
    (home / "mailctl.toml").write_text("")
    settings = {
        "CONFIG": home / "mailctl.toml",
        "GENERAL_DATA_DIR": home / "data",
        "GENERAL_LOG_LEVEL": "WARNING",
        "DATABASE_URL": url,
        "SCHEDULER_TIMEZONE": "UTC",
        "SCHEDULER_TICK_SECONDS": 1,
        "DELIVERY_TRANSPORT": "smtp",
        "DELIVERY_FROM_ADDRESS": "news@example.org",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": smtp_port,
        "SMTP_LOCAL_HOSTNAME": name,
        "WEB_BASE_URL": "https://mail.example.org",
        "WEB_SECRET_KEY": SECRET,
    }
    env.update({f"MAILCTL_{k}": str(v) for k, v in settings.items()})
    return env


def wait_beating(engine: Engine, n: int, procs: list[subprocess.Popen[bytes]]) -> None:
    from mailctl.models import Worker

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"a daemon exited with {p.returncode}")
        with engine.connect() as conn:
            count = conn.execute(select(func.count()).select_from(Worker)).scalar_one()
        if count >= n:
            return
        time.sleep(0.1)
    raise RuntimeError("the daemons did not start")


def measure(url: str, backend: str, daemons: int, clients: int, sink: Sink) -> Result:
    from mailctl.models import Delivery, DeliveryAttempt
    from mailctl.models.delivery import OPEN

    with tempfile.TemporaryDirectory(prefix="mailctl-bench-") as tmp:
        workdir = Path(tmp)
        if backend == "sqlite":
            url = f"sqlite:///{workdir / 'bench.db'}"
        engine = fresh_database(url, workdir)
        if backend == "sqlite":
            engine.dispose()
            from mailctl.config import load_settings
            from mailctl.db import make_engine

            os.environ["MAILCTL_DATABASE_URL"] = url
            engine = make_engine(load_settings())  # WAL, busy timeout, BEGIN IMMEDIATE
        user_id, message_id = seed(engine, clients)
        procs = []
        for i in range(1, daemons + 1):
            name = f"bench-daemon-{i}"
            with (workdir / f"{name}.log").open("wb") as log:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "mailctl", "daemon"],
                        env=daemon_env(url, workdir / name, name, sink.port),
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        cwd=workdir,
                    )
                )
        try:
            wait_beating(engine, daemons, procs)
            meter = CpuMeter([p.pid for p in procs], sink.pid)
            mailing_id, t0 = add_due_mailing(engine, user_id, message_id)
            while True:
                for p in procs:
                    if p.poll() is not None:
                        raise RuntimeError(f"a daemon exited with {p.returncode}")
                with engine.connect() as conn:
                    total, left = conn.execute(
                        select(
                            func.count(),
                            func.count().filter(Delivery.state.in_(OPEN)),  # type: ignore[attr-defined]
                        ).where(Delivery.mailing_id == mailing_id)
                    ).one()
                if total == clients and left == 0:
                    break
                time.sleep(0.2)
            cpu = meter.used()
            with engine.connect() as conn:
                first, last, sent = conn.execute(
                    select(
                        func.min(DeliveryAttempt.attempted_at),
                        func.max(DeliveryAttempt.attempted_at),
                        func.count().filter(DeliveryAttempt.status == "sent"),
                    ).where(DeliveryAttempt.mailing_id == mailing_id)
                ).one()
            if sent != clients:
                raise RuntimeError(f"only {sent} of {clients} sent; see the daemon logs")
        finally:
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
            engine.dispose()
        seconds = (last - t0).total_seconds()
        return Result(backend, daemons, clients, seconds, (last - first).total_seconds(), cpu)


# -- report ---------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20_000)
    parser.add_argument("--daemons", default="1,2,3", help="daemon counts on PostgreSQL")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over every case")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()
    url = (
        os.environ.get("MAILCTL_BENCH_DATABASE_URL")
        or os.environ.get("MAILCTL_TEST_DATABASE_URL")
        or DEFAULT_PG
    )
    counts = [int(n) for n in args.daemons.split(",")]
    plan = [("postgresql", n) for n in counts] + ([] if args.no_sqlite else [("sqlite", 1)])

    runs: dict[tuple[str, int], list[Result]] = {case: [] for case in plan}
    with mail_sink() as sink:
        print(
            f"{args.clients} clients, sink {sink.kind}, {args.rounds} rounds alternating over"
            f" the cases; {load_average()}",
            file=sys.stderr,
        )
        for round_no in range(1, args.rounds + 1):
            for backend, n in plan:
                r = measure(url, backend, n, args.clients, sink)
                runs[(backend, n)].append(r)
                print(
                    f"  round {round_no}: {backend} x{n}: {r.seconds:.1f}s ({r.rate:.0f}/s);"
                    f" {load_average()}",
                    file=sys.stderr,
                    flush=True,
                )

    def median_run(results: list[Result]) -> Result:
        return sorted(results, key=lambda r: r.rate)[len(results) // 2]

    base_case = ("postgresql", 1) if ("postgresql", 1) in runs else plan[0]
    base = statistics.median(r.rate for r in runs[base_case])
    print(f"{args.rounds} rounds; {load_average()}")
    print(
        f"{'database':<11}{'daemons':>8}{'msg/s min / median / max':>26}{'ratio':>7}"
        f"   median run: {'seconds':>8}{'sending':>8}  cpu (cores): {'daemons':>8}"
        f"{'postgres':>9}{'sink':>6}{'other':>7}"
    )
    for (backend, n), results in runs.items():
        r = median_run(results)
        cores = {k: v / r.cpu["wall"] for k, v in r.cpu.items()}
        rates = spread([x.rate for x in results], fmt=".0f")
        ratio = statistics.median(x.rate for x in results) / base
        print(
            f"{backend:<11}{n:>8}{rates:>26}{ratio:>7.2f}"
            f"   {'':>12}{r.seconds:>8.1f}{r.sending_seconds:>8.1f}  {'':>13}"
            f"{cores['daemons']:>8.2f}{cores['postgres']:>9.2f}{cores['sink']:>6.2f}"
            f"{cores['other']:>7.2f}"
        )
    print(
        "ratio: median throughput / PostgreSQL with 1 daemon's median; seconds: mailing committed"
        " -> last "
        "attempt; sending: first -> last attempt; cpu: cores busy on average meanwhile "
        "(other: the rest of the machine, including this script)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
