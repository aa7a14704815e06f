"""The CLI's CSV files (`client export`, `mailing report --csv`) open safely in a spreadsheet,
and an exported client list imports back to the same values."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailctl.services.csvfile import safe_cell
from tests.support import spreadsheet
from tests.support.cli import USER1, as_json, new_id, ok

CLIENTS = [
    ("a@example.com", '=HYPERLINK("http://evil.example","x")', "=cmd|' /C calc'!A0"),
    ("b@example.com", "-", "+49 30 1234"),
    ("c@example.com", "@handle", "-- a note\nwith two lines"),
    ("d@example.com", "'quoted", "''=x"),
    ("=cmd@example.com", "+plus", "@"),
    ("e@example.com", "Ann; -2+3", 'VIP;=HYPERLINK("http://evil.example","x")'),
    ("f@example.com", '"=quoted', "hello\n=cmd|' /C calc'!A0\n  @SUM(1)\r\n\t=x"),
    ("g@example.com", "\uff1d1+1", "a;b; c\n- one\n- two"),
    ("-dash@example.com", "Anne-Marie", ""),
]
# A second formula after a ';': a cell of its own in a Russian or German Excel.
EVIL_REPLY = '=HYPERLINK("http://evil.example","x");=cmd|\' /C calc\'!A0'


def guarded(path_or_text: Path | str) -> list[list[str]]:
    # As written: read_text() would turn a CRLF inside a cell into LF.
    text = path_or_text.read_bytes().decode() if isinstance(path_or_text, Path) else path_or_text
    return spreadsheet.rows(text)


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
    # stdout the same (its bytes: Click's `stdout` turns CRLF into LF)
    assert guarded(ok(cli("client", "export", as_=USER1)).stdout_bytes.decode()) == rows
    for client in as_json(cli("client", "list", "--json", as_=USER1)):
        ok(cli("client", "rm", client["id"], as_=USER1))
    assert listed(cli) == []
    ok(cli("client", "import", out, "--strict", as_=USER1))
    assert listed(cli) == before


@pytest.fixture
def hostile_server() -> Iterator[int]:
    """A real SMTP server whose every 250 reply carries a spreadsheet formula."""
    from aiosmtpd.controller import Controller

    from tests.support.smtp import free_port

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
    assert {r[5] for r in rows} == {safe_cell(EVIL_REPLY)}
    assert safe_cell(EVIL_REPLY) == "'" + EVIL_REPLY.replace(";=", ";'=")
    assert {r[2] for r in rows} >= {"'=cmd@example.com", "'-dash@example.com"}
    # The log itself keeps the server's words as they were.
    logs = json.loads(ok(cli("mailing", "logs", mailing, "--json", as_=USER1)).stdout)
    assert {entry["response"] for entry in logs} == {EVIL_REPLY}
