"""Hostile mail servers the breaker's count of troubles in a row did not catch, and replies
that could not be logged.

- A server silent after every other message: each silence costs a timeout and leaves its
  recipient unknown, and an answer in between used to reset the count, so the pass went on
  to the end with half the list unknown. Trouble in `limit` of the last 2 x `limit` attempts
  stops it now.
- A server silent at RCPT: the attempt said "connect: timed out", which sent the operator
  to the wrong place.
- A reply with a NUL in it: PostgreSQL refuses NUL in text, so the attempt could not be
  logged and the pass ended with the delivered message left `sending`. Control and format
  characters (escape sequences for the terminal, a right-to-left override) are escaped.
"""

from __future__ import annotations

import time

from mailctl.schedule import Clock
from mailctl.sending.policy import Breaker
from mailctl.sending.transport import DEFERRED, SENT, UNKNOWN, Outcome
from tests.support.ledger import ledger, mailing_error, states

TIMEOUT = 1.0  # smtp.timeout in these tests (smtp_settings)


def _pass(engine, settings, bound: float):  # type: ignore[no-untyped-def]
    from mailctl.services.delivery import run_pass

    began = time.monotonic()
    clock = Clock(tz="UTC", period_seconds=None)
    summary = run_pass(engine=engine, settings=settings, clock=clock, worker="test")
    elapsed = time.monotonic() - began
    assert elapsed < bound, f"the pass took {elapsed:.1f}s"
    return summary


def test_a_server_silent_after_every_other_message_stops_the_pass(
    cli, engine, fault, smtp_settings, make_mailing
) -> None:
    server = fault("silent_every_other")
    # One connection: the alternation the breaker counts is the order of the ledger.
    settings = smtp_settings(
        server.port, delivery_circuit_breaker=3, delivery_batch_size=4, smtp_connections=1
    )
    emails = [f"r{i}@example.com" for i in range(24)]
    mailing_id = make_mailing(emails)

    # unknown, sent, unknown, sent, unknown, sent, unknown: three of the last six had no reply.
    summary = _pass(engine, settings, bound=4 * TIMEOUT + 10)
    assert (summary.unknown, summary.sent) == (4, 3)
    assert summary.stopped is not None
    assert summary.stopped.startswith(
        "stopped after no reply from the server to 3 of the last 6 messages"
    )
    now = states(engine, mailing_id)
    assert [e for e in emails if now[e] == "unknown"] == emails[0:7:2]
    assert sum(s == "pending" for s in now.values()) == 24 - 7
    assert mailing_error(engine, mailing_id) == summary.stopped
    status = cli("status")
    assert f"last pass: {summary.stopped}" in status.stdout
    assert "unknown: the server took the message and did not answer" in status.stdout

    # The server behaves again: the rest goes out once each; the unknown are not resent.
    server.set_scenario("ok")
    summary = _pass(engine, settings, bound=20)
    assert (summary.sent, summary.unknown, summary.stopped) == (17, 0, None)
    received = server.received_rcpts()
    assert sorted(received) == sorted(emails) and len(received) == len(set(received))


def test_a_server_silent_at_rcpt_is_reported_at_rcpt(
    engine, fault, smtp_settings, make_mailing
) -> None:
    server = fault("silent_rcpt")
    settings = smtp_settings(server.port, delivery_circuit_breaker=2)
    mailing_id = make_mailing(["ann@example.com", "bob@example.com", "cy@example.com"])
    summary = _pass(engine, settings, bound=2 * TIMEOUT + 10)
    assert summary.deferred == 2 and summary.stopped is not None
    rows = ledger(engine, mailing_id).values()
    replies = {row["last_reply"] for row in rows if row["last_reply"]}
    assert replies == {"rcpt: timed out after 1s"}, replies
    assert "(rcpt: timed out after 1s)" in summary.stopped
    assert server.received_rcpts() == []


def test_control_characters_in_a_reply_are_logged_escaped(
    cli, engine, fault, smtp_settings, make_mailing
) -> None:
    """On PostgreSQL the NUL alone used to end the pass (run the suite with
    MAILCTL_TEST_DATABASE_URL to see it there)."""
    server = fault("control_reply")
    settings = smtp_settings(server.port)
    mailing_id = make_mailing(["ann@example.com", "bob@example.com"])
    summary = _pass(engine, settings, bound=20)
    assert (summary.sent, summary.stopped) == (2, None)
    assert set(states(engine, mailing_id).values()) == {"sent"}
    replies = sorted(row["last_reply"] for row in ledger(engine, mailing_id).values())
    assert replies == [
        "2.0.0 queued\\x00 \\x1b[2J\\u202e 1",
        "2.0.0 queued\\x00 \\x1b[2J\\u202e 2",
    ]
    logs = cli("mailing", "logs", str(mailing_id))
    assert logs.exit_code == 0 and "\x1b" not in logs.stdout and "\\x1b[2J" in logs.stdout
    assert len(server.received_rcpts()) == 2


# -- the breaker's rate rule, on its own ---------------------------------------------------

SILENT = Outcome(UNKNOWN, None, "no reply after the message was sent: timed out after 30s")
REFUSED = Outcome(DEFERRED, None, "connect: connection refused", connection_failure=True)
ANSWERED = Outcome(SENT, 250, "ok")


def _run(breaker: Breaker, pattern: list[Outcome], times: int) -> tuple[int, str | None]:
    """How many attempts until the breaker stops the pass (and why), or (all, None)."""
    for n, outcome in enumerate(pattern * times, start=1):
        stop = breaker.record(outcome)
        if stop is not None:
            return n, stop
    return len(pattern) * times, None


def test_trouble_in_half_of_the_recent_attempts_stops_the_pass() -> None:
    attempts, stop = _run(Breaker(5), [SILENT, ANSWERED], 100)
    assert attempts == 11  # six timeouts, not a hundred
    assert stop is not None
    assert stop.startswith("stopped after no reply from the server to 5 of the last 10 messages")
    attempts, stop = _run(Breaker(5), [REFUSED, ANSWERED, REFUSED, ANSWERED, ANSWERED], 100)
    assert stop is None  # two in five: a flaky server, not a dead one
    attempts, stop = _run(Breaker(5), [REFUSED, SILENT, ANSWERED, ANSWERED], 100)
    assert stop is not None and "failed attempts of the last 10" in stop
    attempts, stop = _run(Breaker(5), [REFUSED, ANSWERED], 100)
    assert stop is not None and "connection failures in 5 of the last 10 attempts" in stop


def test_an_occasional_failure_never_stops_the_pass() -> None:
    assert _run(Breaker(5), [SILENT, ANSWERED, ANSWERED], 1000)[1] is None
    assert _run(Breaker(3), [SILENT, ANSWERED, ANSWERED], 1000)[1] is None


def test_after_a_stop_for_the_rate_the_next_pass_is_half_open() -> None:
    _, stop = _run(Breaker(5), [SILENT, ANSWERED], 100)
    assert stop is not None
    again = Breaker(5)
    again.probe([stop])
    assert again.record(SILENT) is not None
