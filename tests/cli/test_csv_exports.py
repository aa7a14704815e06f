"""The CLI's CSV files (`client export`, `mailing report --csv`) open safely in a spreadsheet,
and an exported client list imports back to the same values."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailctl.services.csvfile import TRIGGERS

from .helpers import USER1, as_json, new_id, ok

CLIENTS = [
    ("a@example.com", '=HYPERLINK("http://evil.example","x")', "=cmd|' /C calc'!A0"),
    ("b@example.com", "-", "+49 30 1234"),
    ("c@example.com", "@handle", "-- a note\nwith two lines"),
    ("d@example.com", "'quoted", "''=x"),
    ("=cmd@example.com", "+plus", "@"),
    ("-dash@example.com", "Anne-Marie", ""),
]
EVIL_REPLY = '=HYPERLINK("http://evil.example","x")'


def guarded(path_or_text: Path | str) -> list[list[str]]:
    text = path_or_text.read_text() if isinstance(path_or_text, Path) else path_or_text
    rows = list(csv.reader(io.StringIO(text)))
    for row in rows:
        for cell in row:
            assert not cell or cell[0] not in TRIGGERS, f"{cell!r} would run in a spreadsheet"
    return rows


def listed(cli) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    return sorted(
        (c["email"], c["full_name"], c["comment"])
        for c in as_json(cli("client", "list", "--json", as_=USER1))
    )


def test_client_export_is_guarded_and_imports_back(cli, users, tmp_path: Path) -> None:
    for email, name, comment in CLIENTS:
        # --opt=value and "--": values and addresses may begin with "-".
        ok(cli("client", "add", f"--name={name}", f"--comment={comment}", "--", email, as_=USER1))
    before = listed(cli)
    out = tmp_path / "clients.csv"
    ok(cli("client", "export", out, as_=USER1))
    rows = guarded(out)
    assert [r[1] for r in rows if "a@" in r[0]] == ['\'=HYPERLINK("http://evil.example","x")']
    assert guarded(ok(cli("client", "export", as_=USER1)).stdout) == rows  # stdout the same
    for client in as_json(cli("client", "list", "--json", as_=USER1)):
        ok(cli("client", "rm", client["id"], as_=USER1))
    assert listed(cli) == []
    ok(cli("client", "import", out, "--strict", as_=USER1))
    assert listed(cli) == before


@pytest.fixture
def hostile_server() -> Iterator[int]:
    """A real SMTP server whose every 250 reply carries a spreadsheet formula."""
    from aiosmtpd.controller import Controller

    from sending.conftest import free_port

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
            return f"250 {EVIL_REPLY}"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port, ready_timeout=5)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def test_the_attempts_report_is_guarded_even_against_the_mail_server(
    cli, users, tmp_path: Path, monkeypatch, hostile_server: int
) -> None:
    for key, value in {
        "DELIVERY_TRANSPORT": "smtp",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": hostile_server,
        "SMTP_TIMEOUT": 5,
    }.items():
        monkeypatch.setenv(f"MAILCTL_{key}", str(value))
    for email, name, comment in CLIENTS:
        # --opt=value and "--": values and addresses may begin with "-".
        ok(cli("client", "add", f"--name={name}", f"--comment={comment}", "--", email, as_=USER1))
    message = new_id(cli("message", "add", "--subject", "Hi", "--body", "Hello", as_=USER1))
    mailing = new_id(
        cli(
            "mailing",
            "add",
            "--message",
            message,
            "--all-clients",
            "--start",
            "now",
            "--every",
            "once",
            "--no-send",
            as_=USER1,
        )
    )
    ok(cli("mailing", "send", mailing, as_=USER1))
    out = tmp_path / "attempts.csv"
    ok(cli("mailing", "report", mailing, "--csv", out, as_=USER1))
    header, *rows = guarded(out)
    assert header[:4] == ["attempted_at", "run_id", "email", "status"]
    assert len(rows) == len(CLIENTS)
    assert {r[5] for r in rows} == {"'" + EVIL_REPLY}
    assert {r[2] for r in rows} >= {"'=cmd@example.com", "'-dash@example.com"}
    # The log itself keeps the server's words as they were.
    logs = json.loads(ok(cli("mailing", "logs", mailing, "--json", as_=USER1)).stdout)
    assert {entry["response"] for entry in logs} == {EVIL_REPLY}
