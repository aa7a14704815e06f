"""Data at scale: client import, the attempts log as JSON, the report's CSV, the home figures.

    python bench/bench_data.py [--rounds 3] [--only import,logs,report,home]
                               [--small 10000] [--large 100000]

Every case runs as a fresh `mailctl` process on a temp SQLite database (PostgreSQL for the
home figures too, with MAILCTL_BENCH_DATABASE_URL), the two sizes of a case alternating
inside each round so that other load on the machine skews them alike. For each: wall time and
the child's own peak RSS (the kernel's rusage of that process, os.wait4), min / median / max
over the rounds, with the machine's load average.

(a) `client import` of --small and --large rows (tags, a custom field, 1 row in 1,000 bad).
(b) `mailing logs ID --json --limit 0` (every attempt) at 1,000, 10,000 and --large attempts.
(c) `mailing report ID --csv FILE` at the same sizes.
    Targets for (a)-(c): the time of the largest <= 1.2x the next size's times the row ratio
    (linear), the peak RSS of the largest within 1.2x of the smallest's, all < 150 MB.
(d) the home figures (total and active mailings, unique client emails across every
    mailing's audience), uncached, in this process: 10,000 clients / 100 mailings, 100,000 /
    1,000 and 100,000 / 10,000. Target: <= 3x the time for 10x the data.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert, select, text
from sqlalchemy.engine import Connection, Engine

sys.path.insert(0, str(Path(__file__).parent))
from benchlib import Child, load_average, run_child, spread  # noqa: E402

from mailctl.models import (  # noqa: E402
    Client,
    ClientTag,
    Delivery,
    DeliveryAttempt,
    Mailing,
    MailingClient,
    MailingRun,
    MailingTag,
    Message,
    Tag,
    User,
)

ADMIN = "bench@example.com"
PASSWORD = "bench-password-1"
TIME_TARGET = 1.2
MEMORY_TARGET = 1.2
MEMORY_CAP_MB = 150
HOME_TARGET = 3.0
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILCTL_")}
    return env | {
        "MAILCTL_CONFIG": str(home / "mailctl.toml"),
        "MAILCTL_GENERAL_DATA_DIR": str(home / "data"),
        "MAILCTL_SCHEDULER_TIMEZONE": "UTC",
        "NO_COLOR": "1",
    }


MAILCTL = [sys.executable, "-m", "mailctl"]


@contextmanager
def fresh_home(template: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """A copy of an initialised home (config and database), removed afterwards."""
    home = Path(tempfile.mkdtemp(prefix="mailctl-bench-data-"))
    try:
        shutil.copytree(template, home, dirs_exist_ok=True)
        yield home, environment(home)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def initialised(root: Path) -> Path:
    template = root / "template"
    (template / "data").mkdir(parents=True)
    (template / "mailctl.toml").write_text("")
    run_child(
        [*MAILCTL, "init", "--admin", ADMIN, "--password-stdin"],
        environment(template),
        stdin=f"{PASSWORD}\n".encode(),
    )
    return template


def engine_of(home: Path) -> Engine:
    return create_engine(f"sqlite:///{home / 'data' / 'mailctl.db'}")


# -- (a) import ----------------------------------------------------------------------------


def write_csv(path: Path, rows: int) -> int:
    """A contacts file of `rows` rows, one in a thousand bad; returns how many are bad."""
    bad = 0
    with path.open("w", encoding="utf-8") as out:
        out.write("email,full_name,comment,tags,city\n")
        for i in range(rows):
            if i % 1000 == 999:
                out.write(f"broken-{i},Bad row {i},,,\n")
                bad += 1
            else:
                out.write(f"c{i}@example.com,Client {i},note {i},news;t{i % 10},City {i % 50}\n")
    return bad


def bench_import(root: Path, template: Path, sizes: list[int], rounds: int) -> None:
    files = {}
    for n in sizes:
        files[n] = root / f"import-{n}.csv"
        write_csv(files[n], n)
    results: dict[int, list[Child]] = {n: [] for n in sizes}
    for _ in range(rounds):
        for n in sizes:
            with fresh_home(template) as (_, env):
                argv = [*MAILCTL, "client", "import", str(files[n])]
                results[n].append(run_child(argv, env, ok=(1,)))  # 1: the bad rows
    report("client import", "rows", results)


# -- (b), (c) logs and report --------------------------------------------------------------


def seed_log(engine: Engine, owner_id: int, attempts: int) -> int:
    """A mailing of the owner's with one run and `attempts` logged attempts; its id."""
    with engine.begin() as conn:
        message = conn.execute(
            insert(Message)
            .values(owner_id=owner_id, subject="Hi", body="Hello", format="text")
            .returning(Message.id)
        ).scalar_one()
        mailing = conn.execute(
            insert(Mailing)
            .values(
                owner_id=owner_id,
                message_id=message,
                start_at=T0,
                status="finished",
                audience="all",
            )
            .returning(Mailing.id)
        ).scalar_one()
        run = conn.execute(
            insert(MailingRun)
            .values(mailing_id=mailing, scheduled_at=T0, recipients=attempts)
            .returning(MailingRun.id)
        ).scalar_one()
        first = conn.execute(select(text("coalesce(max(id), 0)")).select_from(Delivery)).scalar()
        for start in range(0, attempts, 10_000):
            span = range(start, min(start + 10_000, attempts))
            conn.execute(
                insert(Delivery),
                [
                    {
                        "id": first + i + 1,
                        "run_id": run,
                        "mailing_id": mailing,
                        "email": f"r{i}@example.com",
                        "state": "sent",
                        "attempts": 1,
                    }
                    for i in span
                ],
            )
            conn.execute(
                insert(DeliveryAttempt),
                [
                    {
                        "delivery_id": first + i + 1,
                        "mailing_id": mailing,
                        "run_id": run,
                        "email": f"r{i}@example.com",
                        "attempted_at": T0 + timedelta(milliseconds=i),
                        "status": "sent" if i % 7 else "deferred",
                        "smtp_code": 250 if i % 7 else 451,
                        "response": f"2.0.0 Ok: queued as X{i}" if i % 7 else "4.7.1 Try later",
                    }
                    for i in span
                ],
            )
    return int(mailing)


def bench_outputs(root: Path, template: Path, large: int, rounds: int, which: list[str]) -> None:
    home = root / "outputs"
    shutil.copytree(template, home)
    env = environment(home)
    engine = engine_of(home)
    with engine.connect() as conn:
        owner = conn.execute(select(User.id).where(User.email == ADMIN)).scalar_one()
    # 1,000 and --large as asked; 10,000 between, so that the time ratio compares sizes
    # where the rows, not the start-up, make most of the time.
    sizes = sorted({1000, 10_000, large})
    mailings = {n: seed_log(engine, owner, n) for n in sizes}
    engine.dispose()
    if "logs" in which:
        results: dict[int, list[Child]] = {n: [] for n in sizes}
        for _ in range(rounds):
            for n in sizes:
                argv = [*MAILCTL, "mailing", "logs", str(mailings[n]), "--json", "--limit", "0"]
                results[n].append(run_child(argv, env))
        report("mailing logs --json", "attempts", results)
    if "report" in which:
        results = {n: [] for n in sizes}
        for _ in range(rounds):
            for n in sizes:
                out = home / f"report-{n}.csv"
                argv = [*MAILCTL, "mailing", "report", str(mailings[n]), "--csv", str(out)]
                results[n].append(run_child(argv, env))
        report("mailing report --csv", "attempts", results)


def report(title: str, unit: str, results: dict[int, list[Child]]) -> None:
    """Spreads per size; the time ratio of the two largest sizes against linear growth, and
    the peak memory of the largest against the smallest."""
    sizes = sorted(results)
    print(f"\n{title}: {len(results[sizes[0]])} rounds, alternating; {load_average()}")
    print(f"{unit:>10} {'seconds min / median / max':>30} {'peak RSS MB min / median / max':>34}")
    for n in sizes:
        runs = results[n]
        print(
            f"{n:>10} {spread([r.seconds for r in runs]):>30}"
            f" {spread([r.peak_mb for r in runs], fmt='.0f'):>34}"
        )
    lower, larger = sizes[-2], sizes[-1]
    scale = larger / lower
    t_lower = statistics.median(r.seconds for r in results[lower])
    t_larger = statistics.median(r.seconds for r in results[larger])
    m_small = statistics.median(r.peak_mb for r in results[sizes[0]])
    m_large = statistics.median(r.peak_mb for r in results[larger])
    ratio = t_larger / (scale * t_lower)
    flag = "" if ratio <= TIME_TARGET else "  !"
    print(
        f"time ratio (median) {t_larger:.2f} s / ({scale:.0f} x {t_lower:.2f} s) = {ratio:.2f}"
        f" (target <= {TIME_TARGET}; each time includes the ~1 s start-up){flag}"
    )
    mem = m_large / m_small
    flag = "" if mem <= MEMORY_TARGET and m_large < MEMORY_CAP_MB else "  !"
    print(
        f"peak RSS ratio (median) {larger} vs {sizes[0]}: {m_large:.0f} / {m_small:.0f} MB ="
        f" {mem:.2f} (target <= {MEMORY_TARGET}, both < {MEMORY_CAP_MB} MB){flag}"
    )


# -- (d) home figures -------------------------------------------------------------------------


OWNERS = 10
LINKED = 20  # clients linked to each mailing with an explicit audience


def many(conn: Connection, model: Any, rows: list[dict[str, Any]]) -> None:
    """On PostgreSQL, multi-row INSERTs of 1,000 rows, as an import makes them: psycopg sends
    an executemany row by row, and the triggers of migration 0018 would run for each row. On
    SQLite an executemany (its triggers run per row either way)."""
    if conn.dialect.name == "sqlite":
        conn.execute(insert(model), rows)
        return
    for start in range(0, len(rows), 1000):
        conn.execute(insert(model).values(rows[start : start + 1000]))


def seed_home(engine: Engine, clients: int, mailings: int) -> None:
    """Ten owners sharing `clients` clients (one tag of ten each, some addresses on two
    owners' lists) and `mailings` mailings: half to linked clients, a quarter to a tag, a
    quarter to all of the owner's clients."""
    with engine.begin() as conn:
        owners = [
            conn.execute(
                insert(User).values(email=f"owner{o}@example.com", role="user").returning(User.id)
            ).scalar_one()
            for o in range(OWNERS)
        ]
        tags = {
            (o, t): conn.execute(
                insert(Tag)
                .values(owner_id=owners[o], name=f"t{t}", name_key=f"t{t}")
                .returning(Tag.id)
            ).scalar_one()
            for o in range(OWNERS)
            for t in range(10)
        }
        for start in range(0, clients, 10_000):
            span = range(start, min(start + 10_000, clients))
            emails = [f"c{i - 1 if i % 10 == 1 else i}@example.com" for i in span]
            many(  # every tenth address is also on the next owner's list
                conn,
                Client,
                [
                    {
                        "id": i + 1,
                        "owner_id": owners[i % OWNERS],
                        "email": email,
                        "email_key": email,
                        "attrs": {},
                        "created_at": T0,
                    }
                    for i, email in zip(span, emails, strict=True)
                ],
            )
            many(
                conn,
                ClientTag,
                [
                    {"client_id": i + 1, "tag_id": tags[(i % OWNERS, (i // OWNERS) % 10)]}
                    for i in span
                ],
            )
        message = {
            o: conn.execute(
                insert(Message)
                .values(owner_id=owners[o], subject="Hi", body="x", format="text")
                .returning(Message.id)
            ).scalar_one()
            for o in range(OWNERS)
        }
        kinds = ["clients", "clients", "tags", "all"]
        rows = [
            {
                "id": m + 1,
                "owner_id": owners[m % OWNERS],
                "message_id": message[m % OWNERS],
                "every": "once",
                "audience": kinds[m % 4],
                "start_at": T0,
                "status": "started" if m % 3 else "finished",
                "is_enabled": bool(m % 5),
                "created_at": T0,
                "updated_at": T0,
            }
            for m in range(mailings)
        ]
        many(conn, Mailing, rows)
        per_owner = clients // OWNERS
        many(
            conn,
            MailingClient,
            [
                {
                    "mailing_id": m + 1,
                    "client_id": (((m * 7 + k * 13) % per_owner) * OWNERS + m % OWNERS) + 1,
                }
                for m in range(mailings)
                if kinds[m % 4] == "clients"
                for k in range(LINKED)
            ],
        )
        many(
            conn,
            MailingTag,
            [
                {"mailing_id": m + 1, "tag_id": tags[(m % OWNERS, m % 10)]}
                for m in range(mailings)
                if kinds[m % 4] == "tags"
            ],
        )


def figures_time(engine: Engine, exact: bool = False) -> Callable[[], float]:
    """One reading of the home figures (`exact`: the unique emails counted from the
    audiences, as before migration 0018 kept them), timed."""
    from sqlmodel import Session

    from mailctl.services import figures

    def once() -> float:
        with Session(engine) as session:
            start = time.perf_counter()
            if exact:
                figures.count_exactly(session=session, actor=None)
            else:
                figures.stats(session=session, actor=None)
            return time.perf_counter() - start

    return once


def checked(engine: Engine) -> str:
    """The figures, and whether the kept unique count equals the exact one."""
    from sqlmodel import Session

    from mailctl.services import figures

    with Session(engine) as session:
        got = figures.stats(session=session, actor=None)
        exact = figures.count_exactly(session=session, actor=None)
    agree = "= exact" if got.unique_clients == exact else f"!= exact {exact}  !"
    return f"{got.total_mailings} / {got.active_mailings} / {got.unique_clients} {agree}"


def seeded(engine: Engine, clients: int, mailings: int) -> float:
    """Seed a case; the seconds it took (the triggers keeping the figure run meanwhile)."""
    start = time.perf_counter()
    seed_home(engine, clients, mailings)
    return time.perf_counter() - start


def print_ratios(cases: list[tuple[int, int]], medians: dict[tuple[int, int], float]) -> None:
    for case in cases[1:]:
        ratio = medians[case] / medians[cases[0]]
        print(
            f"ratio {case[0]} / {case[1]} vs {cases[0][0]} / {cases[0][1]}: {ratio:.2f}"
            f" (target <= {HOME_TARGET}){'' if ratio <= HOME_TARGET else '  !'}"
        )


HOME_CASES = [(10_000, 100), (100_000, 1_000), (100_000, 10_000)]
HEADER = f"{'clients / mailings':>20} {'seed s':>7} {'kept ms min/med/max':>22} {'exact ms':>22}"


def bench_home(root: Path, template: Path, rounds: int) -> None:
    engines, seeding = {}, {}
    for clients, mailings in HOME_CASES:
        home = root / f"home-{clients}-{mailings}"
        shutil.copytree(template, home)
        engines[(clients, mailings)] = engine_of(home)
        seeding[(clients, mailings)] = seeded(engines[(clients, mailings)], clients, mailings)
        with engines[(clients, mailings)].connect() as conn:
            conn.execute(text("ANALYZE"))
    pg = os.environ.get("MAILCTL_BENCH_DATABASE_URL")
    print(f"\nhome figures (uncached, in process): {rounds} rounds, alternating; {load_average()}")
    kept = {case: figures_time(engine) for case, engine in engines.items()}
    exact = {case: figures_time(engine, exact=True) for case, engine in engines.items()}
    for timer in [*kept.values(), *exact.values()]:
        timer()  # warm the file cache
    times: dict[tuple[int, int], list[float]] = {case: [] for case in HOME_CASES}
    exact_times: dict[tuple[int, int], list[float]] = {case: [] for case in HOME_CASES}
    for _ in range(rounds):
        for case in HOME_CASES:
            times[case].append(kept[case]())
            exact_times[case].append(exact[case]())
    print(HEADER + "  figures")
    for case in HOME_CASES:
        print(
            f"{case[0]:>10} / {case[1]:<7} {seeding[case]:>7.1f}"
            f" {spread(times[case], 1000, '.2f'):>22}"
            f" {spread(exact_times[case], 1000, '.1f'):>22}  {checked(engines[case])}"
        )
    print_ratios(HOME_CASES, {case: statistics.median(t) for case, t in times.items()})
    for engine in engines.values():
        engine.dispose()
    if pg:
        bench_home_pg(pg, rounds)


def bench_home_pg(url: str, rounds: int) -> None:
    """The same figures on PostgreSQL. One database, so the cases run one after another
    (its schema `public` dropped and rebuilt for each), not alternating."""
    from mailctl import migrations

    print(f"\nhome figures on PostgreSQL: {rounds} rounds per case; {load_average()}")
    print(HEADER + "  figures")
    medians = {}
    for clients, mailings in HOME_CASES:
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        migrations.upgrade(engine)
        seeding = seeded(engine, clients, mailings)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
        timer, exact = figures_time(engine), figures_time(engine, exact=True)
        timer(), exact()
        times = [timer() for _ in range(rounds)]
        exact_times = [exact() for _ in range(rounds)]
        medians[(clients, mailings)] = statistics.median(times)
        print(
            f"{clients:>10} / {mailings:<7} {seeding:>7.1f} {spread(times, 1000, '.2f'):>22}"
            f" {spread(exact_times, 1000, '.1f'):>22}  {checked(engine)}"
        )
        engine.dispose()
    print_ratios(HOME_CASES, medians)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--only", default="import,logs,report,home")
    args = parser.parse_args()
    which = args.only.split(",")
    print(f"bench_data: {args.rounds} rounds; {load_average()}")
    with tempfile.TemporaryDirectory(prefix="mailctl-bench-data-") as tmp:
        root = Path(tmp)
        template = initialised(root)
        if "import" in which:
            bench_import(root, template, [args.small, args.large], args.rounds)
        if "logs" in which or "report" in which:
            bench_outputs(root, template, args.large, args.rounds, which)
        if "home" in which:
            bench_home(root, template, args.rounds)


if __name__ == "__main__":
    main()
