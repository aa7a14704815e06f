"""Every kind of bad mail server: bounded time, the right state, a readable reason, no repeat.

The misbehaving server is tests/faults/faultserver.py; timeouts are shrunk to a second (the
per-attempt deadline to three) so each scenario costs seconds, not minutes.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy.engine import Engine

from mailctl.config import Settings
from mailctl.schedule import Clock
from mailctl.sending.policy import Summary
from tests.support.faultserver import FaultServer
from tests.support.ledger import attempts, ledger, mailing_error, states

Recipients = list[str]


def rcpts(n: int, prefix: str = "r") -> Recipients:
    return [f"{prefix}{i}@example.com" for i in range(n)]


def run(engine: Engine, settings: Settings, bound: float = 20.0) -> Summary:
    from mailctl.services.delivery import run_pass

    began = time.monotonic()
    summary = run_pass(
        engine=engine, settings=settings, clock=Clock.from_settings(settings), worker="test"
    )
    elapsed = time.monotonic() - began
    assert elapsed < bound, f"the pass took {elapsed:.1f}s"
    return summary


def recover(server: FaultServer, engine: Engine, settings: Settings, mailing_id: int) -> None:
    """The server heals; one later pass delivers each deferred recipient exactly once."""
    expected = sorted(e for e, s in states(engine, mailing_id).items() if s != "failed")
    before = len(server.received_rcpts())
    server.set_scenario("ok")
    run(engine, settings)
    got = sorted(server.received_rcpts()[before:])
    assert got == expected
    assert all(s in ("sent", "failed") for s in states(engine, mailing_id).values())
    # And nothing more on the pass after.
    run(engine, settings)
    assert sorted(server.received_rcpts()[before:]) == expected


# Temporary trouble: every recipient deferred with a readable reason, all delivered later.
TEMPORARY = [
    pytest.param("slow_greeting", {"delay": 3.0}, "timed out after 1s", None, id="slow_greeting"),
    pytest.param("silent", {}, "timed out after 1s", None, id="silent"),
    pytest.param(
        "slow_drip", {"drip_interval": 0.05}, "attempt deadline of 2s exceeded", None, id="drip"
    ),
    pytest.param("garbage", {}, "malformed reply", None, id="garbage"),
    pytest.param("garbage_mail", {}, "malformed reply at MAIL FROM: 25", None, id="garbage_mail"),
    pytest.param("line_too_long", {}, "malformed reply", None, id="line_too_long"),
    pytest.param("421_greeting", {}, "greeting: 421 4.3.2", 421, id="421_greeting"),
    pytest.param("451_rcpt", {}, "RCPT TO: 451 4.3.0 temporary local problem", 451, id="451"),
    pytest.param("452_rcpt", {}, "RCPT TO: 452 4.5.3 too many recipients", 452, id="452"),
    # The same refusals from a server without PIPELINING: commands go one by one.
    pytest.param(
        "garbage_mail",
        {"pipelining": False},
        "malformed reply at MAIL FROM: 25",
        None,
        id="garbage_mail-one-by-one",
    ),
    pytest.param(
        "451_rcpt",
        {"pipelining": False},
        "RCPT TO: 451 4.3.0 temporary local problem",
        451,
        id="451-one-by-one",
    ),
]


@pytest.mark.parametrize(("scenario", "kwargs", "reason", "code"), TEMPORARY)
def test_temporary_failures_are_deferred_then_delivered_once(
    engine, fault, smtp_settings, make_mailing, scenario, kwargs, reason, code
) -> None:
    server = fault(scenario, **kwargs)
    settings = smtp_settings(server.port, delivery_attempt_deadline_seconds=2)
    emails = rcpts(3)
    mailing_id = make_mailing(emails)

    summary = run(engine, settings, bound=3 * 2 + 5)
    assert summary.deferred == 3 and summary.sent == 0
    assert server.received_rcpts() == []
    rows = ledger(engine, mailing_id)
    for address in emails:
        row = rows[address]
        assert row["state"] == "deferred"
        assert row["attempts"] == 1
        assert row["next_attempt_at"] is not None
        assert row["claimed_by"] is None
        assert reason in row["last_reply"], row["last_reply"]
        assert row["last_code"] == code
    log = attempts(engine, mailing_id)
    assert len(log) == 3
    assert all(a["status"] == "deferred" and reason in a["response"] for a in log)

    recover(server, engine, settings, mailing_id)


def test_slow_greeting_within_the_timeout_is_fine(
    engine, fault, smtp_settings, make_mailing
) -> None:
    server = fault("slow_greeting", delay=0.4)
    settings = smtp_settings(server.port, smtp_connections=1)
    mailing_id = make_mailing(rcpts(3))
    summary = run(engine, settings, bound=5)
    assert summary.sent == 3
    assert server.connections == 1  # one connection for the whole run
    assert set(states(engine, mailing_id).values()) == {"sent"}


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "one-by-one"])
def test_550_for_some_recipients_fails_only_those(
    engine, fault, smtp_settings, make_mailing, pipelining
) -> None:
    bad = {"r1@example.com", "r3@example.com"}
    server = fault("550_some", reject=bad, pipelining=pipelining)
    settings = smtp_settings(server.port, smtp_connections=1)
    emails = rcpts(5)
    mailing_id = make_mailing(emails)

    summary = run(engine, settings, bound=5)
    assert (summary.sent, summary.failed) == (3, 2)
    assert sorted(server.received_rcpts()) == sorted(set(emails) - bad)
    assert server.connections == 1  # a refusal is not a reason to reconnect
    rows = ledger(engine, mailing_id)
    for address in bad:
        assert rows[address]["state"] == "failed"
        assert rows[address]["last_code"] == 550
        assert rows[address]["last_reply"] == "RCPT TO: 550 5.1.1 no such user"
        assert rows[address]["next_attempt_at"] is None
    # Permanent means permanent: never tried again, even when asked to retry deferred ones.
    from mailctl.db import session_scope
    from mailctl.models import User
    from mailctl.services.reports import requeue

    with session_scope(engine) as session:
        actor = session.get(User, 1)
        assert requeue(session=session, actor=actor, mailing_id=mailing_id) == 0  # type: ignore[arg-type]
    run(engine, settings)
    assert len(server.received_rcpts()) == 3
    assert len(attempts(engine, mailing_id)) == 5


def test_drop_during_data_is_deferred_then_delivered_once(
    engine, fault, smtp_settings, make_mailing
) -> None:
    server = fault("drop_data")
    settings = smtp_settings(server.port)
    emails = rcpts(3)
    mailing_id = make_mailing(emails)

    summary = run(engine, settings, bound=10)
    assert summary.deferred == 3, summary
    assert server.received_rcpts() == []
    for row in ledger(engine, mailing_id).values():
        assert row["state"] == "deferred"
        # Refused mid-body (EPIPE) or reset before the dot was read: never "unknown".
        assert row["last_reply"].startswith("data: "), row["last_reply"]
    recover(server, engine, settings, mailing_id)


def test_no_reply_after_the_final_dot_is_unknown_and_not_resent(
    cli, engine, fault, smtp_settings, make_mailing
) -> None:
    server = fault("no_final_reply")
    settings = smtp_settings(server.port)
    emails = rcpts(2)
    mailing_id = make_mailing(emails)

    summary = run(engine, settings, bound=2 * 3 + 5)
    assert summary.unknown == 2 and summary.sent == 0
    rows = ledger(engine, mailing_id)
    for address in emails:
        assert rows[address]["state"] == "unknown"
        assert "no reply after the message was sent" in rows[address]["last_reply"]
    assert [a["status"] for a in attempts(engine, mailing_id)] == ["unknown", "unknown"]

    # The server heals, but unknown rows are not resent by a pass, nor by a plain retry.
    server.set_scenario("ok")
    run(engine, settings)
    result = cli("mailing", "retry", mailing_id)
    assert result.exit_code == 0, result.stderr
    assert "queued 0 recipients" in result.stderr
    assert server.received_rcpts() == []
    assert set(states(engine, mailing_id).values()) == {"unknown"}

    # Only when the operator accepts a possible duplicate.
    result = cli("mailing", "retry", mailing_id, "--unknown")
    assert result.exit_code == 0, result.stderr
    assert sorted(server.received_rcpts()) == emails
    assert set(states(engine, mailing_id).values()) == {"sent"}
    run(engine, settings)
    assert sorted(server.received_rcpts()) == emails


def test_garbage_after_250_at_quit_is_sent(engine, fault, smtp_settings, make_mailing) -> None:
    server = fault("garbage_quit")
    settings = smtp_settings(server.port)
    emails = rcpts(3)
    mailing_id = make_mailing(emails)
    summary = run(engine, settings, bound=5)
    assert summary.sent == 3
    assert sorted(server.received_rcpts()) == emails
    assert set(states(engine, mailing_id).values()) == {"sent"}
    assert {(a["status"], a["smtp_code"]) for a in attempts(engine, mailing_id)} == {("sent", 250)}
    run(engine, settings)
    assert len(server.received_rcpts()) == 3


def test_refused_connection_trips_the_breaker_then_recovers(
    engine, fault, smtp_settings, make_mailing
) -> None:
    server = fault("refuse", down_for=3.0)
    settings = smtp_settings(server.port, delivery_circuit_breaker=3)
    emails = rcpts(10)
    mailing_id = make_mailing(emails)

    summary = run(engine, settings, bound=5)
    assert summary.deferred == 3 and summary.sent == 0
    assert summary.stopped is not None and "3 consecutive connection failures" in summary.stopped
    rows = ledger(engine, mailing_id)
    # Four connections, yet a server not proven in this pass takes one message at a time:
    # exactly the breaker's count is tried (which three depends on the lanes' race).
    tried = [e for e in emails if rows[e]["state"] == "deferred"]
    assert len(tried) == 3
    for address in tried:
        assert "connection refused by 127.0.0.1" in rows[address]["last_reply"]
    for address in set(emails) - set(tried):  # nobody hammered the dead server for them
        assert rows[address]["state"] == "pending"
        assert rows[address]["attempts"] == 0
        assert rows[address]["claimed_by"] is None
    error = mailing_error(engine, mailing_id)
    assert error is not None and "consecutive connection failures" in error
    assert len(attempts(engine, mailing_id)) == 3

    # A pass while it is still down stops at once again, touching no one else: one attempt
    # (on whichever row the first of the four lanes carried).
    run(engine, settings, bound=5)
    assert len(attempts(engine, mailing_id)) == 4
    assert sum(s == "pending" for s in states(engine, mailing_id).values()) in (6, 7)

    # The server comes back by itself.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        import socket

        try:
            socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    summary = run(engine, settings)
    assert summary.sent == 10 and summary.stopped is None
    assert sorted(server.received_rcpts()) == emails
    assert mailing_error(engine, mailing_id) is None  # a pass that got through clears it
    run(engine, settings)
    assert len(server.received_rcpts()) == 10


def test_rejected_login_pauses_without_burning_recipients(
    engine, fault, smtp_settings, make_mailing
) -> None:
    server = fault("535_auth")
    settings = smtp_settings(server.port, smtp_username="user", smtp_password="pass")
    emails = rcpts(5)
    mailing_id = make_mailing(emails)

    summary = run(engine, settings, bound=5)
    assert summary.stopped is not None
    assert "the mail server rejected the login: 535" in summary.stopped
    assert (summary.sent, summary.deferred, summary.failed) == (0, 0, 0)
    for row in ledger(engine, mailing_id).values():
        assert (row["state"], row["attempts"], row["claimed_by"]) == ("pending", 0, None)
    error = mailing_error(engine, mailing_id)
    assert error is not None and "rejected the login" in error
    assert server.connections == 1  # one try, not one per recipient

    server.set_scenario("ok")
    summary = run(engine, settings)
    assert summary.sent == 5
    assert sorted(server.received_rcpts()) == emails
    assert mailing_error(engine, mailing_id) is None


def test_login_with_the_right_password_works(
    engine, fault, smtp_settings, make_mailing, tmp_path
) -> None:
    server = fault("ok")
    secret = tmp_path / "smtp-password"
    secret.write_text("pass\n")
    settings = smtp_settings(server.port, smtp_username="user", smtp_password_file=secret)
    mailing_id = make_mailing(rcpts(2))
    assert run(engine, settings).sent == 2
    assert set(states(engine, mailing_id).values()) == {"sent"}


@pytest.mark.parametrize(
    ("scenario", "kwargs", "summary_text"),
    [
        ("silent", {}, "deferred 2"),
        ("garbage", {}, "deferred 2"),
        ("refuse", {"down_for": 30.0}, "consecutive connection failures"),
        ("535_auth", {}, "paused: the mail server rejected the login"),
        ("no_final_reply", {}, "unknown 2"),
    ],
)
def test_cli_reports_bad_servers_in_one_line(
    cli, engine, fault, smtp_settings, make_mailing, scenario, kwargs, summary_text
) -> None:
    server = fault(scenario, **kwargs)
    smtp_settings(
        server.port,
        smtp_username="user" if scenario == "535_auth" else "",
        smtp_password="pass",
        delivery_circuit_breaker=2,
    )
    mailing_id = make_mailing(rcpts(2))
    began = time.monotonic()
    result = cli("mailing", "send", mailing_id)
    assert time.monotonic() - began < 10
    assert "Traceback" not in result.stderr + result.stdout
    # A rejected login is the operator's to fix: the command says so with its exit code.
    assert result.exit_code == (1 if scenario == "535_auth" else 0), result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert summary_text in lines[0]

    report = cli("mailing", "report", mailing_id)
    assert report.exit_code == 0 and "Traceback" not in report.stderr
    logs = cli("mailing", "logs", mailing_id, "--json")
    assert logs.exit_code == 0


def test_a_dead_server_costs_bounded_time_for_many_recipients(
    engine, fault, smtp_settings, make_mailing
) -> None:
    """A black hole with many recipients: the breaker bounds the pass, not the list size."""
    server = fault("silent")
    settings = smtp_settings(server.port, delivery_circuit_breaker=3, delivery_batch_size=2)
    emails = rcpts(40)
    mailing_id = make_mailing(emails)
    summary = run(engine, settings, bound=3 * 1 + 4)
    assert summary.deferred == 3  # counted across batches of 2
    assert sum(s == "pending" for s in states(engine, mailing_id).values()) == 37


def test_a_connection_the_server_closed_while_idle_is_replaced(fault, smtp_settings) -> None:
    from mailctl.sending.transport import SmtpTransport

    server = fault("ok")
    smtp = smtp_settings(server.port)
    transport = SmtpTransport(smtp.smtp.servers[0], deadline=smtp.delivery.attempt_deadline_seconds)
    try:
        first = transport.send(sender="a@example.org", recipient="r0@example.com", data=b"x\r\n")
        assert first.status == "sent"
        for _thread, session in server._snapshot_sessions():
            session.kick()  # the server drops the idle connection
        time.sleep(0.2)
        second = transport.send(sender="a@example.org", recipient="r1@example.com", data=b"y")
        assert second.status == "sent", second  # nothing of it was sent: reconnect and go on
        assert server.connections == 2
        assert server.received_rcpts() == ["r0@example.com", "r1@example.com"]
        assert server.messages[1][2].endswith(b"y\r\n")  # a missing final CRLF is added
    finally:
        transport.close()


@pytest.mark.parametrize(
    ("scenario", "recipient", "status", "calls"),
    [
        ("ok", "r0@example.com", "sent", 1),
        ("550_some", "reject@example.com", "failed", 0),  # refused before the body: no wait
        ("no_final_reply", "r0@example.com", "unknown", 1),
    ],
)
def test_meanwhile_runs_once_while_the_server_holds_the_message(
    fault, smtp_settings, scenario: str, recipient: str, status: str, calls: int
) -> None:
    """The sender renders its next message in this wait; the work never changes the verdict."""
    from mailctl.sending.transport import SmtpTransport

    server = fault(scenario, reject={"reject@example.com"})
    smtp = smtp_settings(server.port)
    transport = SmtpTransport(smtp.smtp.servers[0], deadline=smtp.delivery.attempt_deadline_seconds)
    seen: list[bool] = []

    def meanwhile() -> None:
        # Only after the final dot went out: then the server can take the whole message
        # (the fault server keeps it as soon as it has read the dot, before it answers).
        deadline = time.monotonic() + 2
        while scenario == "ok" and not server.messages and time.monotonic() < deadline:
            time.sleep(0.01)
        seen.append(bool(server.messages))

    try:
        outcome = transport.send(
            sender="a@example.org", recipient=recipient, data=b"body\r\n", meanwhile=meanwhile
        )
    finally:
        transport.close()
    assert outcome.status == status, outcome
    assert seen == [scenario == "ok"] * calls
