"""Resolving a mailing's audience by tag when a run starts: 100,000 clients against 1,000.

    python bench/bench_audience.py [--small 1000] [--large 100000] [--database-url URL]

Each size runs in a fresh process on a fresh database (a temp SQLite file unless a URL is
given): N clients with the tag, N/10 without, a suppressed tenth of the tagged ones, a weekly
mailing to the tag. What is timed is `start_due_runs`, which fills the ledger for the run with
one INSERT ... SELECT; the Python heap's peak during it (tracemalloc) shows that nothing is
held per client. Prints each measure and the ratios large/small: time should grow about
linearly (ratio near large/small), memory should stay flat (ratio near 1).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(n: int, url: str | None) -> dict[str, float]:
    from sqlalchemy import func, insert, select

    from mailctl.config import load_settings
    from mailctl.db import make_engine, session_scope, utcnow
    from mailctl.migrations import upgrade
    from mailctl.models import Client, ClientTag, Delivery, Suppression, Tag, User
    from mailctl.schedule import Clock
    from mailctl.services.mailings import add_mailing
    from mailctl.services.messages import add_message
    from mailctl.services.runs import start_due_runs

    tmp = tempfile.mkdtemp(prefix="bench-audience-")
    os.environ["MAILCTL_DATABASE_URL"] = url or f"sqlite:///{tmp}/bench.db"
    os.environ["MAILCTL_CACHE_DIR"] = f"{tmp}/cache"
    engine = make_engine(load_settings(), create=True)
    upgrade(engine)
    with session_scope(engine) as s:
        user = User(email="bench@example.com", role="user", is_verified=True)
        s.add(user)
        s.flush()
        tag = Tag(owner_id=user.id or 0, name="news", name_key="news")
        s.add(tag)
        s.flush()
        owner, tag_id = user.id or 0, tag.id or 0
    total = n + n // 10
    with engine.begin() as conn:
        for start in range(0, total, 10_000):
            rows = [
                {
                    "owner_id": owner,
                    "email": f"c{i}@example.com",
                    "email_key": f"c{i}@example.com",
                    "full_name": "",
                    "comment": "",
                    "attrs": {},
                    "created_at": utcnow(),
                }
                for i in range(start, min(total, start + 10_000))
            ]
            conn.execute(insert(Client), rows)
        ids = conn.execute(select(Client.id).order_by(Client.id).limit(n)).scalars().all()
        for start in range(0, n, 10_000):
            conn.execute(
                insert(ClientTag),
                [{"client_id": i, "tag_id": tag_id} for i in ids[start : start + 10_000]],
            )
        conn.execute(
            insert(Suppression),
            [
                {
                    "owner_id": owner,
                    "email_key": f"c{i}@example.com",
                    "email_hash": f"h{i}",
                    "reason": "unsubscribed",
                    "note": "",
                    "created_at": utcnow(),
                    "removed_note": "",
                }
                for i in range(0, n, 10)
            ],
        )
    with session_scope(engine) as s:
        actor = s.get(User, owner)
        message = add_message(session=s, actor=actor, subject="Hi", body="Hello")
        add_mailing(
            session=s,
            actor=actor,
            message_id=message.id or 0,
            start=utcnow(),
            every="week",
            tags=["news"],
            clock=Clock(tz="UTC", period_seconds=None),
        )
    tracemalloc.start()
    started = time.perf_counter()
    (run,) = start_due_runs(engine, clock=Clock(tz="UTC", period_seconds=None))
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    with engine.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(Delivery)).scalar_one()
        skipped = conn.execute(
            select(func.count()).select_from(Delivery).where(Delivery.state == "skipped")
        ).scalar_one()
    assert rows == n and skipped == n // 10, (rows, skipped)
    engine.dispose()
    return {"clients": n, "seconds": seconds, "peak_kib": peak / 1024, "run": run}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--database-url", default=None, help="PostgreSQL: an empty database")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(measure(args.child, args.database_url)))
        return
    results = {}
    for n in (args.small, args.large):
        cmd = [sys.executable, __file__, "--child", str(n)]
        if args.database_url:
            cmd += ["--database-url", args.database_url]
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
        results[n] = json.loads(out.strip().splitlines()[-1])
        r = results[n]
        print(
            f"{n:>8} clients by tag: {r['seconds'] * 1000:9.1f} ms,"
            f" heap peak {r['peak_kib']:8.1f} KiB"
        )
    small, large = results[args.small], results[args.large]
    print(
        f"ratio {args.large // args.small}x clients:"
        f" time x{large['seconds'] / small['seconds']:.1f},"
        " "
        f"heap peak x{large['peak_kib'] / small['peak_kib']:.2f}"
    )


if __name__ == "__main__":
    main()
