"""Erasure: after `client erase`, the address is found nowhere in the database, the reports
still count every attempt, and the keyed hash keeps a suppressed address blocked."""

from __future__ import annotations

import json
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import String, cast, func, select
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from tests.support.cli import as_json, fails, new_id, ok
from tests.support.smtp import Collector, free_port

ADDRESS = "Erin.Gone@Example.com"


class NamesTheAddress(Collector):
    """Accepts everyone except Erin, whom it refuses naming her address (as real servers do)."""

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address.lower() == ADDRESS.lower():
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def _found_anywhere(engine: Engine, needle: str) -> list[str]:
    """Every table and column (cast to text) where `needle` occurs, in any case."""
    hits = []
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            for column in table.columns:
                stmt = (
                    select(func.count())
                    .select_from(table)
                    .where(func.lower(cast(column, String)).contains(needle.lower()))
                )
                if conn.execute(stmt).scalar_one():
                    hits.append(f"{table.name}.{column.name}")
    return hits


def test_erase_removes_the_address_everywhere_and_reports_still_count(
    cli, engine: Engine, smtp_settings, monkeypatch
) -> None:
    monkeypatch.setenv("MAILCTL_WEB_SECRET_KEY", "erasure-test-secret-key")
    handler = NamesTheAddress()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, ready_timeout=30)
    controller.start()
    try:
        smtp_settings(port)
        erin = new_id(cli("client", "add", ADDRESS, "--name", "Erin Gone", "--tag", "news"))
        ok(cli("client", "add", "stays@example.com", "--tag", "news"))
        ok(cli("field", "add", "city"))
        ok(cli("client", "edit", erin, "--set", "city=Riga"))
        msg = new_id(cli("message", "add", "--subject", "Hi", "--body", "Hello {{ client.email }}"))
        mailing = int(
            ok(
                cli(
                    "mailing",
                    "add",
                    "--message",
                    msg,
                    "--tag",
                    "news",
                    "--start",
                    "now",
                    "--every",
                    "once",
                )
            ).stdout.split()[0]
        )
        ok(cli("suppression", "add", ADDRESS, "--note", f"asked: {ADDRESS.lower()}"))
        before = as_json(cli("mailing", "report", mailing, "--json"))
        assert _found_anywhere(engine, ADDRESS)

        result = ok(cli("client", "erase", erin, "--yes"))
        assert "erased client" in result.stderr

        assert _found_anywhere(engine, ADDRESS) == []
        assert _found_anywhere(engine, "Erin Gone") == []
        assert _found_anywhere(engine, "Riga") == []
        after = as_json(cli("mailing", "report", mailing, "--json"))
        # Every count, rate and time as it was; the server's reply names a hash, not Erin.
        assert before.pop("last_error").startswith(f"RCPT TO: 550 5.1.1 <{ADDRESS.split('@')[0]}")
        assert after.pop("last_error").startswith("RCPT TO: 550 5.1.1 <erased:")
        assert after == before
        assert before["failed"] == 1 and before["sent"] == 1
        attempts = ok(cli("mailing", "logs", mailing, "--json")).stdout
        assert ADDRESS.lower() not in attempts.lower() and "erased:" in attempts
        listed = as_json(cli("suppression", "list", "--json"))
        assert [e["email"] for e in listed] == [listed[0]["email"]]
        assert listed[0]["email"].startswith("(erased ")

        # Imported again, the address is still blocked, by its hash.
        fails(cli("client", "show", erin), f"client {erin} not found")
        again = new_id(cli("client", "add", ADDRESS.lower(), "--tag", "news"))
        assert again != erin
        handler.envelopes.clear()
        ok(
            cli(
                "mailing",
                "add",
                "--message",
                msg,
                "--tag",
                "news",
                "--start",
                "now",
                "--every",
                "once",
            )
        )
        assert [r.lower() for r in handler.rcpts()] == ["stays@example.com"]
    finally:
        controller.stop()


def test_erase_on_a_pipe_asks_and_refuses_without_yes(cli) -> None:
    erin = new_id(cli("client", "add", ADDRESS))
    result = cli("client", "erase", erin, input="n\n")
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    ok(cli("client", "show", erin))
    fails(cli("client", "erase", 999_999, "--yes"), "client 999999 not found")
    assert [c["id"] for c in json.loads(ok(cli("client", "list", "--json")).stdout)] == [erin]


def test_erase_deletes_the_persons_outbox_files_and_their_name_in_the_log(
    cli, engine: Engine, mailctl_env
) -> None:
    """On the outbox transport, Erin's .eml files go and the log's "written to outbox as ..."
    reply names a hash; a neighbour whose safe file name is the same stays."""
    erin = new_id(cli("client", "add", "Erin+News@Example.com", "--tag", "news"))
    ok(cli("client", "add", "erin_news@example.com", "--tag", "news"))  # same safe name
    msg = new_id(cli("message", "add", "--subject", "Hi", "--body", "Hello"))
    mailing = new_id(cli("mailing", "add", "--message", msg, "--tag", "news", "--start", "now"))
    outbox = mailctl_env / "outbox"
    assert len(list(outbox.glob("*.eml"))) == 2

    result = ok(cli("client", "erase", erin, "--yes"))

    assert "1 outbox files deleted" in result.stderr
    left = list(outbox.glob("*.eml"))
    assert len(left) == 1 and b"X-Envelope-To: <erin_news@example.com>" in left[0].read_bytes()
    logs = ok(cli("mailing", "logs", mailing, "--json")).stdout.lower()
    assert "erin+news" not in logs and "erin_news@example.com" in logs
    assert _found_anywhere(engine, "Erin+News@Example.com") == []
