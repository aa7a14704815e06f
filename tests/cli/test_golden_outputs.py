"""Every output of many rows is byte for byte what it was before it streamed.

The golden files under tests/cli/golden/ were written by the code that built each output whole
in memory (before issue 18), from the small data set below; the streamed code must give the same
bytes: `client export` (stdout and file), `mailing logs --json`, the logs' plain table through a
pipe, `mailing report --csv`, and the panel's two CSV downloads.

    MAILCTL_WRITE_GOLDEN=1 python -m pytest tests/cli/test_golden_outputs.py   # rewrite them
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.engine import Engine

from mailctl.models import Delivery, DeliveryAttempt, Mailing, MailingRun
from tests.support.cli import FUTURE, USER1, new_id, ok

GOLDEN = Path(__file__).parent / "golden"
WRITE = os.environ.get("MAILCTL_WRITE_GOLDEN") == "1"

# Hostile and awkward values on purpose: formula triggers, quotes, line breaks, a lone CR,
# non-ASCII, empty cells, tags and custom fields.
CLIENTS_CSV = (
    "email,full_name,comment,tags,city,plan\n"
    'ann@example.com,Ann Lee,"=HYPERLINK(""http://evil.example"",""x"")",news;vip,Riga,gold\n'
    'bob@example.com,Bob,"two\nlines",news,,\n'
    "zoe@example.com,Zoë Ünal,+49 30 1234,,Köln,\n"
    'cr@example.com,-,"lone\rcarriage",vip,,silver\n'
    "plain@example.com,,,,,\n"
)
BASE = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
REPLIES = [
    ("sent", 250, "2.0.0 Ok: queued as ABC123"),
    ("deferred", 451, "4.7.1 Greylisted; try again in 5 minutes"),
    ("failed", 550, '=HYPERLINK("http://evil.example","x");=cmd|\' /C calc\'!A0'),
    ("sent", 250, "2.0.0 Ok\nmulti-line, with a comma"),
    ("skipped", None, None),
]


def check(name: str, data: bytes) -> None:
    path = GOLDEN / name
    if WRITE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_bytes(data)
    assert path.exists(), f"missing golden file {path}; see this module's docstring"
    assert data == path.read_bytes(), f"{name} differs from its golden file"


def seed_log(engine: Engine, mailing_id: int, emails: list[str]) -> None:
    """One run and a dozen attempts at fixed times, as the sender would have logged them."""
    with engine.begin() as conn:
        run_id = conn.execute(
            insert(MailingRun)
            .values(mailing_id=mailing_id, scheduled_at=BASE, started_at=BASE, recipients=5)
            .returning(MailingRun.id)
        ).scalar_one()
        for n in range(12):
            email = emails[n % len(emails)]
            status, code, reply = REPLIES[n % len(REPLIES)]
            delivery_id = conn.execute(
                select(Delivery.id).where(Delivery.run_id == run_id, Delivery.email == email)
            ).scalar()
            if delivery_id is None:
                delivery_id = conn.execute(
                    insert(Delivery)
                    .values(run_id=run_id, mailing_id=mailing_id, email=email, state=status)
                    .returning(Delivery.id)
                ).scalar_one()
            conn.execute(
                insert(DeliveryAttempt).values(
                    delivery_id=delivery_id,
                    mailing_id=mailing_id,
                    run_id=run_id,
                    email=email,
                    # Two attempts at the same second: the log's order breaks ties by id.
                    attempted_at=BASE + timedelta(seconds=7 * (n // 2)),
                    status=status,
                    smtp_code=code,
                    response=reply,
                    server="relay.example",
                )
            )


@pytest.fixture
def data_set(cli: Any, users: Any, engine: Engine, tmp_path: Path) -> int:
    source = tmp_path / "in.csv"
    source.write_text(CLIENTS_CSV, encoding="utf-8")
    ok(cli("client", "import", source, "--strict", as_=USER1))
    message = new_id(cli("message", "add", "--subject", "Hi", "--body", "Hello", as_=USER1))
    mailing = new_id(
        cli(
            "mailing",
            "add",
            "--message",
            message,
            "--all-clients",
            "--start",
            FUTURE,
            "--no-send",
            as_=USER1,
        )
    )
    with engine.connect() as conn:
        assert conn.execute(select(Mailing.id).where(Mailing.id == mailing)).scalar() == mailing
    emails = [line.split(",")[0] for line in CLIENTS_CSV.splitlines()[1:] if "@" in line]
    seed_log(engine, mailing, emails)
    return mailing


def test_cli_outputs_match_the_golden_files(cli: Any, data_set: int, tmp_path: Path) -> None:
    check("clients.csv", ok(cli("client", "export", as_=USER1)).stdout_bytes)
    out = tmp_path / "clients.csv"
    ok(cli("client", "export", out, as_=USER1))
    check("clients.csv", out.read_bytes())
    logs = ("mailing", "logs", data_set)
    check("logs.json", ok(cli(*logs, "--json", as_=USER1)).stdout_bytes)
    check("logs-limit3.json", ok(cli(*logs, "--json", "--limit", "3", as_=USER1)).stdout_bytes)
    failed = ok(cli(*logs, "--json", "--status", "failed", as_=USER1))
    check("logs-failed.json", failed.stdout_bytes)
    check("logs.tsv", ok(cli(*logs, as_=USER1)).stdout_bytes)
    attempts = tmp_path / "attempts.csv"
    report = ok(cli("mailing", "report", data_set, "--csv", attempts, "--json", as_=USER1))
    check("attempts.csv", attempts.read_bytes())
    check("report.json", report.stdout_bytes)


def test_panel_downloads_match_the_golden_files(
    cli: Any, data_set: int, app: Any, engine: Engine
) -> None:
    from starlette.testclient import TestClient

    from tests.support.web import logged_in

    with TestClient(app, follow_redirects=False) as client:
        logged_in(client, USER1)
        clients = client.get("/clients/export.csv")
        assert clients.status_code == 200
        assert clients.headers["content-type"] == "text/csv; charset=utf-8"
        check("clients.csv", clients.content)
        log = client.get(f"/mailings/{data_set}/attempts.csv")
        assert log.status_code == 200
        assert log.headers["content-disposition"] == (
            f'attachment; filename="mailing-{data_set}-log.csv"'
        )
        check("attempts.csv", log.content)


MIXED_CSV = (
    "email,full_name,comment,tags,city\n"
    "new1@example.com,New One,,fresh,Oslo\n"
    "not-an-email,Bad,,,\n"
    "ann@example.com,Already there,,,\n"
    "new1@EXAMPLE.com,Repeat in file,,,\n"
    "new2@example.com,Bad tag,,a;b;c,\n"
    "new3@example.com,Bad;tag,,x;y/z;Ünï,\n"
    "short@example.com,only three\n"
    'broken@example.com,"unclosed,,,\n'
)


def test_import_report_matches_the_golden_file(cli: Any, data_set: int, tmp_path: Path) -> None:
    source = tmp_path / "mixed.csv"
    source.write_text(MIXED_CSV, encoding="utf-8")
    done = cli("client", "import", source, as_=USER1)
    assert done.exit_code == 1
    check("import-mixed.txt", done.stderr_bytes)
    check("clients-after-import.csv", ok(cli("client", "export", as_=USER1)).stdout_bytes)
