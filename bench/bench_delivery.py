"""Delivery throughput against a local sink, and peak memory at a large run.

    python bench/bench_delivery.py [--clients 10000] [--rss 100000] [--rounds 3]

(a) the ceiling: a bare smtplib loop sending pre-rendered messages over one connection;
(b) mailctl: a temp SQLite database, N clients, one mailing, one `run_pass` over SMTP, every
    ledger and log row written (checked afterwards);
(c) peak RSS of a pass over --rss recipients, in a fresh process.

The sink is Postfix's `smtp-sink` when installed, otherwise a minimal aiosmtpd sink.
Target: (b) >= 0.5 x (a); (c) < 200 MB. (a) and (b) alternate for --rounds rounds (a fresh
database each), and print min / median / max with the machine's load average: one run on a
shared machine is no figure to quote.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mailctl.schedule import Clock

sys.path.insert(0, str(Path(__file__).parent))
from benchlib import load_average, spread  # noqa: E402

# The clock every call here runs on: UTC wall time, real periods.
CLOCK = Clock(tz="UTC", period_seconds=None)

SMTP_SINK = shutil.which("smtp-sink") or (
    "/usr/sbin/smtp-sink" if os.path.exists("/usr/sbin/smtp-sink") else None
)
SUBJECT = "News for {{ client.full_name }}"
BODY = (
    "Hello {{ client.first_name }},\n\n"
    + "This month we have news for you, {{ client.email }}. " * 8
    + "\n\nRegards,\nthe team\n"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"the sink did not come up on port {port}")


@contextmanager
def sink() -> Iterator[tuple[int, str]]:
    port = free_port()
    if SMTP_SINK:
        # smtp-sink refuses to run as root without a user to drop privileges to.
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        proc = subprocess.Popen(
            [SMTP_SINK, *user, f"127.0.0.1:{port}", "1000"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_port(port)
            yield port, "smtp-sink"
        finally:
            proc.terminate()
            proc.wait(timeout=5)
        return
    from aiosmtpd.controller import Controller

    class Discard:
        async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
            return "250 OK"

    controller = Controller(Discard(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, "aiosmtpd"
    finally:
        controller.stop()


def configure(workdir: Path, port: int | None) -> None:
    """Environment for load_settings(): a temp database, the sink or a tmpfs outbox."""
    for name in list(os.environ):
        if name.startswith("MAILCTL_"):
            del os.environ[name]
    (workdir / "mailctl.toml").write_text("")
    env = {
        "CONFIG": workdir / "mailctl.toml",
        "GENERAL_DATA_DIR": workdir,
        "DATABASE_URL": f"sqlite:///{workdir / 'mailctl.db'}",
        "SCHEDULER_TIMEZONE": "UTC",
        "DELIVERY_FROM_ADDRESS": "news@example.org",
        "DELIVERY_FROM_NAME": "Example News",
        "WEB_SECRET_KEY": "bench-secret-key-bench-secret-key",
        "WEB_BASE_URL": "https://mail.example.org",
        "SMTP_LOCAL_HOSTNAME": "bench.local",
    }
    if port is not None:
        env |= {
            "DELIVERY_TRANSPORT": "smtp",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": port,
            "SMTP_TIMEOUT": 10,
        }
    else:
        env |= {"DELIVERY_TRANSPORT": "outbox", "DELIVERY_OUTBOX_DIR": workdir / "outbox"}
    for key, value in env.items():
        os.environ[f"MAILCTL_{key}"] = str(value)


def build_database(n: int, body_format: str = "text", body: str = BODY) -> int:
    """N clients in one mailing, due now; bulk inserts keep 100,000 rows to seconds."""
    from sqlalchemy import insert

    from mailctl import migrations
    from mailctl.config import load_settings
    from mailctl.db import make_engine, session_scope, utcnow
    from mailctl.models import Client, MailingClient, User
    from mailctl.services.mailings import add_mailing
    from mailctl.services.messages import add_message

    settings = load_settings()
    engine = make_engine(settings, create=True)
    migrations.upgrade(engine)
    now = utcnow()
    with session_scope(engine) as session:
        user = User(email="bench@example.org", role="user", password_hash="x", is_verified=True)
        session.add(user)
        session.flush()
        owner_id = user.id
        names = ["Ann Lee", "José Müller", "山田 優希", 'Smith, "Bob"', "Zoë O'Brien"]
        session.execute(
            insert(Client),
            [
                {
                    "owner_id": owner_id,
                    "email": f"client{i}@example.com",
                    "email_key": f"client{i}@example.com",
                    "full_name": f"{names[i % len(names)]} {i}",
                    "comment": "",
                    "created_at": now,
                }
                for i in range(n)
            ],
        )
        message = add_message(
            session=session, actor=user, subject=SUBJECT, body=body, format=body_format
        )
        mailing = add_mailing(
            session=session,
            actor=user,
            message_id=message.id or 0,
            start=now,
            client_ids=[1],
            clock=CLOCK,
        )
        session.execute(
            insert(MailingClient),
            [{"mailing_id": mailing.id, "client_id": i} for i in range(2, n + 1)],
        )
        mailing_id = mailing.id or 0
    engine.dispose()
    return mailing_id


def run_mailctl(mailing_id: int, n: int) -> dict[str, float]:
    from sqlalchemy import func, select

    from mailctl.config import load_settings
    from mailctl.db import make_engine
    from mailctl.models import Delivery, DeliveryAttempt
    from mailctl.schedule import Clock
    from mailctl.services.delivery import run_pass

    settings = load_settings()
    engine = make_engine(settings)
    clock = Clock.from_settings(settings)
    began, cpu = time.perf_counter(), time.process_time()
    summary = run_pass(engine=engine, settings=settings, clock=clock, worker="bench")
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    with engine.connect() as conn:
        sent_rows = conn.execute(
            select(func.count()).select_from(Delivery).where(Delivery.state == "sent")
        ).scalar_one()
        log_rows = conn.execute(
            select(func.count())
            .select_from(DeliveryAttempt)
            .where(DeliveryAttempt.status == "sent", DeliveryAttempt.smtp_code == 250)
        ).scalar_one()
    engine.dispose()
    if not (summary.sent == sent_rows == log_rows == n):
        raise SystemExit(
            f"verification failed: summary {summary.sent}, ledger {sent_rows}, log {log_rows}, "
            f"expected {n} ({summary.stopped or 'no stop reason'})"
        )
    return {"seconds": elapsed, "rate": n / elapsed, "cpu_us": cpu / n * 1e6}


def run_ceiling(port: int, n: int) -> dict[str, float]:
    """The practical ceiling: pre-rendered bytes, one connection, nothing recorded."""
    from mailctl.sending.render import MessageContent, MessageRenderer
    from mailctl.sending.templates import RenderClient

    renderer = MessageRenderer(
        MessageContent(subject=SUBJECT, body=BODY),
        from_address="news@example.org",
        from_name="Example News",
    )
    messages = [
        (
            f"client{i}@example.com",
            renderer.render(
                RenderClient(f"client{i}@example.com", f"Ann Lee {i}"),
                unsubscribe_url=f"https://mail.example.org/unsubscribe/{i}",
            ).data,
        )
        for i in range(n)
    ]
    conn = smtplib.SMTP("127.0.0.1", port, local_hostname="bench.local", timeout=10)
    began, cpu = time.perf_counter(), time.process_time()
    for rcpt, data in messages:
        conn.sendmail("news@example.org", [rcpt], data)
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    conn.quit()
    return {"seconds": elapsed, "rate": n / elapsed, "cpu_us": cpu / n * 1e6}


def rss_child(mailing_id: int, n: int) -> None:
    """Runs in a fresh process: one pass, then report the peak RSS of this process."""
    import resource

    result = run_mailctl(mailing_id, n)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    hwm = 0
    try:  # the same peak, but of this program only (ru_maxrss survives exec)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    except OSError:
        pass
    print(json.dumps({"peak_kib": peak, "hwm_kib": hwm, **result}))


def measure_rss(n: int, port: int | None) -> dict[str, float]:
    """Build the database in one process and run the pass in another, both started while
    this process is still small: Linux carries ru_maxrss across exec, so a child started by a
    big parent would report the parent's peak."""
    with tempfile.TemporaryDirectory(prefix="mailctl-bench-rss-") as tmp:
        configure(Path(tmp), port)
        print(f"(c) building a database of {n:,} recipients...", flush=True)
        built = _child("--rss-build", str(n))
        mailing_id = int(built.strip().splitlines()[-1])
        out = _child("--rss-child", str(mailing_id), str(n))
        return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _child(*args: str) -> str:
    out = subprocess.run(
        [sys.executable, __file__, *args],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"{args[0]} failed:\n{out.stderr}")
    return out.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--rss", type=int, default=100_000, help="recipients for (c); 0 skips")
    parser.add_argument("--rounds", type=int, default=3, help="ceiling and mailctl, alternating")
    parser.add_argument("--profile", action="store_true", help="cProfile the mailctl pass")
    parser.add_argument("--rss-child", nargs=2, type=int, help=argparse.SUPPRESS)
    parser.add_argument("--rss-build", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.rss_child:
        rss_child(*args.rss_child)
        return
    if args.rss_build:
        print(build_database(args.rss_build))
        return

    n = args.clients
    with sink() as (port, kind):
        print(f"sink: {kind} on 127.0.0.1:{port}; {n:,} messages each", flush=True)
        print(f"{args.rounds} rounds, ceiling and mailctl alternating; {load_average()}")
        rss = measure_rss(args.rss, port) if args.rss else None
        ceilings, runs = [], []
        for round_no in range(1, args.rounds + 1):
            ceilings.append(run_ceiling(port, n))
            with tempfile.TemporaryDirectory(prefix="mailctl-bench-") as tmp:
                configure(Path(tmp), port)
                mailing_id = build_database(n)
                if args.profile:
                    import cProfile
                    import pstats

                    profiler = cProfile.Profile()
                    profiler.enable()
                    runs.append(run_mailctl(mailing_id, n))
                    profiler.disable()
                    pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
                else:
                    runs.append(run_mailctl(mailing_id, n))
            print(
                f"  round {round_no}: ceiling {ceilings[-1]['rate']:.0f} msg/s,"
                f" mailctl {runs[-1]['rate']:.0f} msg/s,"
                f" ratio {runs[-1]['rate'] / ceilings[-1]['rate']:.2f}; {load_average()}",
                flush=True,
            )
        print("min / median / max over the rounds:")
        print(
            f"(a) ceiling, bare smtplib loop:  {spread([c['rate'] for c in ceilings], fmt='.0f')}"
            f" msg/s, {spread([c['cpu_us'] for c in ceilings], fmt='.0f')} us CPU per message"
        )
        print(
            f"(b) mailctl run_pass over SMTP:  {spread([r['rate'] for r in runs], fmt='.0f')}"
            f" msg/s, {spread([r['cpu_us'] for r in runs], fmt='.0f')} us CPU per message,"
            " every ledger and log row verified"
        )
        ratios = [r["rate"] / c["rate"] for r, c in zip(runs, ceilings, strict=True)]
        print(f"    ratio mailctl / ceiling (same round): {spread(ratios)} (target >= 0.5)")
        # The wall-clock ratio leans on loopback latency (the ceiling waits four round trips
        # a message, mailctl two and renders in one of them); the CPU ratio is what it would
        # tend to on a link with no latency at all.
        cpu_ratios = [c["cpu_us"] / r["cpu_us"] for r, c in zip(runs, ceilings, strict=True)]
        caveat = "" if kind == "smtp-sink" else " (not meaningful: this sink runs in-process)"
        print(f"    CPU per message, ceiling / mailctl: {spread(cpu_ratios)}{caveat}")
        print(f"    {load_average()}", flush=True)

        if rss is not None:
            print(
                f"(c) peak RSS of a pass over {args.rss:,} recipients: "
                f"{rss['peak_kib'] / 1024:.0f} MB (VmHWM {rss['hwm_kib'] / 1024:.0f} MB; "
                f"target < 200 MB) at {rss['rate']:.0f} msg/s",
                flush=True,
            )


if __name__ == "__main__":
    main()
