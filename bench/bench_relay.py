"""Delivery against a relay that answers after D ms, a shared rate limit, CPU per message.

    python bench/bench_relay.py [--only throughput|limit|cpu] [--limit-seconds 30]

(a) throughput: a relay (tests/faults/relay.py, its own process) answers every batch of
    pipelined commands D ms after reading it, like a relay in another data centre. For D = 5
    and 20 ms and C = 1, 4, 8, 10 connections: mailctl's msg/s (one `run_pass`, every ledger and
    log row written) against the physical limit C/(2D) (a message is two round trips with
    PIPELINING), and against C plain smtplib threads sending pre-rendered bytes over C
    connections (smtplib does not pipeline: four round trips a message).
    Target: >= 0.8 of C/(2D) until the CPU is the limit, and never below the smtplib threads.
(b) limit: two sender processes (`mailctl run-due`, 4 connections each) share
    rate_per_second = R through the database for --limit-seconds: the rate measured at the
    relay against R (target within 5 %), and the busiest single second (target <= R).
(c) cpu: CPU time per message at D = 0 with C = 4, mailctl against 4 smtplib threads (the
    bare ceiling), both against the same local sink.

Every ratio is against a baseline measured in the same run on the same machine.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import json
import os
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench_delivery import BODY, SUBJECT, _wait_port, build_database, configure, free_port, sink

ROOT = Path(__file__).resolve().parent.parent
RELAY = ROOT / "tests" / "support" / "relay.py"


class RelayProcess:
    def __init__(self, delay: float) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, str(RELAY), "--port", str(self.port), "--delay", str(delay)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_port(self.port)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def _messages(n: int) -> list[tuple[str, bytes]]:
    from mailctl.sending.render import MessageContent, MessageRenderer
    from mailctl.sending.templates import RenderClient

    renderer = MessageRenderer(
        MessageContent(subject=SUBJECT, body=BODY),
        from_address="news@example.org",
        from_name="Example News",
    )
    return [
        (
            f"client{i}@example.com",
            renderer.render(
                RenderClient(f"client{i}@example.com", f"Ann Lee {i}"),
                unsubscribe_url=f"https://mail.example.org/unsubscribe/{i}",
            ).data,
        )
        for i in range(n)
    ]


def smtplib_threads(port: int, n: int, threads: int) -> dict[str, float]:
    """C plain smtplib threads, one connection each, sharing a list of pre-rendered bytes."""
    messages = _messages(n)
    lock = threading.Lock()

    def work() -> None:
        conn = smtplib.SMTP("127.0.0.1", port, local_hostname="bench.local", timeout=30)
        while True:
            with lock:
                if not messages:
                    break
                rcpt, data = messages.pop()
            conn.sendmail("news@example.org", [rcpt], data)
        conn.quit()

    began, cpu = time.perf_counter(), time.process_time()
    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    return {"rate": n / elapsed, "cpu_us": cpu / n * 1e6}


def mailctl_pass(workdir: Path, port: int, n: int, connections: int) -> dict[str, float]:
    from sqlalchemy import func, select

    from mailctl.config import load_settings
    from mailctl.db import make_engine
    from mailctl.models import Delivery
    from mailctl.schedule import Clock
    from mailctl.services.delivery import run_pass

    configure(workdir, port)
    os.environ["MAILCTL_SMTP_CONNECTIONS"] = str(connections)
    os.environ["MAILCTL_DELIVERY_BATCH_SIZE"] = "500"
    build_database(n)
    settings = load_settings()
    engine = make_engine(settings)
    began, cpu = time.perf_counter(), time.process_time()
    summary = run_pass(
        engine=engine, settings=settings, clock=Clock.from_settings(settings), worker="bench"
    )
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    with engine.connect() as conn:
        sent = conn.execute(
            select(func.count()).select_from(Delivery).where(Delivery.state == "sent")
        ).scalar_one()
    engine.dispose()
    if not summary.sent == sent == n:
        raise SystemExit(f"verification failed: {summary.sent} sent, {sent} in the ledger, {n}")
    return {"rate": n / elapsed, "cpu_us": cpu / n * 1e6}


def throughput(results: dict[str, object]) -> None:
    print("(a) throughput against a relay answering after D ms")
    heads = ("D", "C", "limit", "mailctl", "smtplib", "/limit", "/smtplib")
    print(" ".join(f"{h:>{w}}" for h, w in zip(heads, (5, 3, 7, 8, 8, 7, 9), strict=True)))
    rows = []
    for delay in (0.005, 0.020):
        relay = RelayProcess(delay)
        try:
            for connections in (1, 4, 8, 10):
                limit = connections / (2 * delay)
                n = int(min(max(limit * 4, 100), 1500))
                with tempfile.TemporaryDirectory() as tmp:
                    ours = mailctl_pass(Path(tmp), relay.port, n, connections)
                base = smtplib_threads(relay.port, n, connections)
                row = {
                    "delay_ms": delay * 1000,
                    "connections": connections,
                    "messages": n,
                    "limit": limit,
                    "mailctl": ours["rate"],
                    "smtplib": base["rate"],
                    "of_limit": ours["rate"] / limit,
                    "of_smtplib": ours["rate"] / base["rate"],
                }
                rows.append(row)
                print(
                    f"{delay * 1000:>4.0f}ms {connections:>3} {limit:>7.0f} {ours['rate']:>8.1f}"
                    f" {base['rate']:>8.1f} {row['of_limit']:>7.2f} {row['of_smtplib']:>9.2f}",
                    flush=True,
                )
        finally:
            relay.close()
    results["throughput"] = rows


def shared_limit(results: dict[str, object], seconds: float, rate: float = 40.0) -> None:
    print(f"(b) two processes sharing rate_per_second = {rate:g} for {seconds:g}s")
    sys.path.insert(0, str(ROOT))
    from tests.support.relay import Relay

    n = int(rate * seconds)
    with tempfile.TemporaryDirectory() as tmp, Relay(delay=0.005) as relay:
        workdir = Path(tmp)
        configure(workdir, relay.port)
        url = os.environ.get("MAILCTL_BENCH_DATABASE_URL")
        if url:
            os.environ["MAILCTL_DATABASE_URL"] = url
        build_database(n)
        env = dict(os.environ)
        env |= {
            "MAILCTL_SMTP_RATE_PER_SECOND": str(rate),
            "MAILCTL_SMTP_CONNECTIONS": "4",
            "MAILCTL_DELIVERY_BATCH_SIZE": "20",
        }
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "mailctl", "run-due"],
                env=env | {"MAILCTL_SMTP_LOCAL_HOSTNAME": f"sender-{i}"},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for i in (1, 2)
        ]
        for proc in procs:
            _, err = proc.communicate(timeout=seconds * 3 + 60)
            if proc.returncode != 0:
                raise SystemExit(f"run-due failed: {err.decode()[-2000:]}")
        times = sorted(relay.times())
        shares = dict(relay.per_sender())
        once = relay.counts()
    if len(times) != n or max(once.values()) != 1:
        raise SystemExit(f"verification failed: {len(times)} of {n} arrived")
    # The rate after the first message (which opens the schedule) to the last one.
    measured = (len(times) - 1) / (times[-1] - times[0])
    # Every one-second window [t, t + 1) that starts at an arrival (the sliding maximum),
    # and the calendar seconds, both by the relay's receive timestamps.
    busiest, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= 1.0:
            start += 1
        busiest = max(busiest, end - start + 1)
    calendar = max(collections.Counter(int(t) for t in times).values())
    over = sum(1 for end, t in enumerate(times) if _window(times, end) > rate)
    row = {
        "rate": rate,
        "seconds": seconds,
        "measured": measured,
        "of_rate": measured / rate,
        "busiest_second": busiest,
        "busiest_calendar_second": calendar,
        "arrivals_in_a_window_over_the_limit": over,
        "shares": shares,
        "database": "postgresql" if os.environ.get("MAILCTL_BENCH_DATABASE_URL") else "sqlite",
    }
    results["limit"] = row
    print(
        f"measured {measured:.2f} msg/s = {measured / rate:.3f} of the limit; busiest second"
        f" {busiest} (any one-second window; limit {rate:g}), busiest calendar second"
        f" {calendar}, arrivals ending a window over the limit {over}; shares {shares}"
    )


def _window(times: list[float], end: int) -> int:
    """How many arrivals fall in the second ending with arrival `end`, (t - 1, t]."""
    return end - bisect.bisect_right(times, times[end] - 1.0) + 1


def cpu(results: dict[str, object]) -> None:
    print("(c) CPU per message at D = 0, C = 4")
    n = 3000
    with sink() as (port, kind), tempfile.TemporaryDirectory() as tmp:
        ours = mailctl_pass(Path(tmp), port, n, 4)
        base = smtplib_threads(port, n, 4)
    row = {
        "sink": kind,
        "mailctl_cpu_us": ours["cpu_us"],
        "smtplib_cpu_us": base["cpu_us"],
        "ceiling_ratio": base["cpu_us"] / ours["cpu_us"],
        "mailctl_rate": ours["rate"],
        "smtplib_rate": base["rate"],
    }
    results["cpu"] = row
    print(
        f"mailctl {ours['cpu_us']:.0f} us/msg ({ours['rate']:.0f} msg/s), smtplib threads"
        f" {base['cpu_us']:.0f} us/msg ({base['rate']:.0f} msg/s): mailctl runs at"
        f" {row['ceiling_ratio']:.2f} of the bare ceiling per CPU second ({kind})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("throughput", "limit", "cpu"))
    parser.add_argument("--limit-seconds", type=float, default=30.0)
    parser.add_argument("--json", action="store_true", help="Print the figures as JSON too.")
    args = parser.parse_args()
    results: dict[str, object] = {}
    if args.only in (None, "throughput"):
        throughput(results)
    if args.only in (None, "limit"):
        shared_limit(results, args.limit_seconds)
    if args.only in (None, "cpu"):
        cpu(results)
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
