"""Normal delivery through a real SMTP server (aiosmtpd), driven from the CLI."""

from __future__ import annotations

import email
import email.policy
import json
from typing import Any

import pytest

from mailctl.schedule import Clock
from tests.support.ledger import attempts, ledger
from tests.support.smtp import Sink

CLIENTS = [
    ("ann@example.com", "Ann Lee"),
    ("jose@example.com", "José Müller"),
    ("yuki@example.com", "山田 優希"),
    ("odd@example.com", 'Smith, "Bob" Jr.'),
    ("plain@example.com", ""),
    ("back@example.com", "Back\\slash O'Neil"),
]
SUBJECT = "Grüße, {{ client.full_name }}!"
BODY = "Hallo {{ client.full_name }},\nunsere Neuigkeiten für {{ client.email }}.\n— Team\n"


def _ok(result: Any) -> Any:
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    return result


def _new_id(result: Any) -> int:
    return int(_ok(result).stdout.strip().splitlines()[-1])


def test_every_client_gets_one_correct_message(cli, engine, sink: Sink, smtp_settings) -> None:
    smtp_settings(sink.port)
    for address, name in CLIENTS:
        _ok(cli("client", "add", address, "--name", name))
    message_id = _new_id(
        cli("message", "add", "--subject", SUBJECT, "--body", BODY, "--format", "text")
    )
    result = _ok(
        cli(
            "mailing",
            "add",
            "--message",
            message_id,
            "--all-clients",
            "--start",
            "now",
            "--every",
            "once",
        )
    )
    mailing_id = int(result.stdout.strip().splitlines()[0])
    assert f"sent {len(CLIENTS)}" in result.stderr
    assert "Traceback" not in result.stderr

    rcpts = sink.handler.rcpts()
    assert sorted(rcpts) == sorted(a for a, _ in CLIENTS)  # exactly one each
    by_rcpt = {e.rcpt_tos[0]: e for e in sink.handler.envelopes}
    message_ids = set()
    for address, name in CLIENTS:
        env = by_rcpt[address]
        assert env.mail_from == "news@example.org"
        msg = email.message_from_bytes(env.content, policy=email.policy.default)
        assert not msg.defects, (address, msg.defects)
        assert msg["From"].addresses[0].display_name == "Example News"
        assert msg["From"].addresses[0].addr_spec == "news@example.org"
        to = msg["To"].addresses[0]
        assert to.addr_spec == address
        assert to.display_name == name
        assert str(msg["Subject"]) == f"Grüße, {name}!"
        assert msg["Date"].datetime is not None
        assert msg["MIME-Version"] == "1.0"
        assert msg.get_content_type() == "text/plain"
        assert msg.get_content_charset() == "utf-8"
        # The body goes out as written, its final newline included.
        expected = f"Hallo {name},\nunsere Neuigkeiten für {address}.\n— Team\n"
        assert msg.get_content().replace("\r\n", "\n") == expected
        unsubscribe = msg["List-Unsubscribe"]
        assert unsubscribe.startswith("<https://mail.example.org/unsubscribe/")
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        message_ids.add(msg["Message-ID"])
    assert len(message_ids) == len(CLIENTS)

    rows = ledger(engine, mailing_id)
    assert {r["state"] for r in rows.values()} == {"sent"}
    assert all(r["attempts"] == 1 and r["last_code"] == 250 for r in rows.values())
    log = attempts(engine, mailing_id)
    assert sorted(a["email"] for a in log) == sorted(a for a, _ in CLIENTS)
    assert {(a["status"], a["smtp_code"]) for a in log} == {("sent", 250)}

    # A later pass finds nothing to do: nobody gets a second copy.
    _ok(cli("run-due"))
    again = cli("mailing", "send", mailing_id)
    assert again.exit_code == 1
    assert again.stderr.strip() == f"error: mailing {mailing_id} has no run left to send"
    assert len(sink.handler.rcpts()) == len(CLIENTS)
    assert len(attempts(engine, mailing_id)) == len(CLIENTS)

    report = json.loads(_ok(cli("mailing", "report", mailing_id, "--json")).stdout)
    assert report["sent"] == len(CLIENTS)
    assert report["success_rate"] == 1.0


@pytest.mark.parametrize("connections", [1, 4])
def test_each_connection_serves_the_whole_run(
    engine, sink: Sink, smtp_settings, make_mailing, connections: int
) -> None:
    from mailctl.services.delivery import run_pass

    settings = smtp_settings(sink.port, smtp_connections=connections)
    opened = []

    class Counting(type(sink.handler)):  # type: ignore[misc]
        async def handle_EHLO(self, server, session, envelope, hostname, responses):
            opened.append(hostname)
            session.host_name = hostname
            return responses

    sink.handler.__class__ = Counting
    mailing_id = make_mailing([f"c{i}@example.com" for i in range(25)])
    summary = run_pass(
        engine=engine, settings=settings, clock=Clock.from_settings(settings), worker="test"
    )
    assert summary.sent == 25
    assert len(opened) == connections
    assert opened[0] == "localhost"  # local_hostname: no DNS look-up at connect
    assert len(sink.handler.rcpts()) == 25
    assert set(ledger(engine, mailing_id)[f"c{i}@example.com"]["state"] for i in range(25)) == {
        "sent"
    }


def test_outbox_is_the_default_transport(engine, make_mailing, settings) -> None:
    from pathlib import Path

    from mailctl.services.delivery import run_pass

    mailing_id = make_mailing(["a@example.com", ("b@example.com", "Bé")])
    summary = run_pass(
        engine=engine, settings=settings, clock=Clock.from_settings(settings), worker="test"
    )
    assert summary.sent == 2
    files = sorted(Path(settings.delivery.outbox_dir).glob("*.eml"))
    assert len(files) == 2
    parsed = [email.message_from_bytes(f.read_bytes(), policy=email.policy.default) for f in files]
    assert sorted(m["X-Envelope-To"] for m in parsed) == ["<a@example.com>", "<b@example.com>"]
    assert {r["state"] for r in ledger(engine, mailing_id).values()} == {"sent"}


def test_lines_starting_with_a_dot_arrive_intact(
    engine, sink: Sink, smtp_settings, make_mailing
) -> None:
    """Dot-stuffing (RFC 5321 4.5.2): a line of "." must not end the message early."""
    from mailctl.services.delivery import run_pass

    settings = smtp_settings(sink.port)
    body = ".first line\nmiddle\n.\n..two dots\nlast {{ client.email }}\n."
    plain = "a plain body without any dot at a line start"
    dotted = make_mailing(["dot@example.com"], body=body)
    undotted = make_mailing(["plain@example.com"], body=plain)
    summary = run_pass(
        engine=engine, settings=settings, clock=Clock.from_settings(settings), worker="test"
    )
    assert summary.sent == 2
    by_rcpt = {e.rcpt_tos[0]: e for e in sink.handler.envelopes}
    for address, expected in (
        ("dot@example.com", body.replace("{{ client.email }}", "dot@example.com")),
        ("plain@example.com", plain),
    ):
        msg = email.message_from_bytes(by_rcpt[address].content, policy=email.policy.default)
        assert msg.get_content().replace("\r\n", "\n").rstrip("\n") == expected
    assert ledger(engine, dotted)["dot@example.com"]["state"] == "sent"
    assert ledger(engine, undotted)["plain@example.com"]["state"] == "sent"
