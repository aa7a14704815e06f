"""A server that takes every message and then says nothing (no reply after the final dot).

Each such attempt costs a full SMTP timeout and leaves its recipient `unknown` (the server
may have delivered it). The circuit breaker counts them: the pass stops after its count, the
rest stays pending, the mailing says why, and the next pass tries just one before it goes
on. Nothing is ever sent twice.
"""

from __future__ import annotations

import time

import pytest
from starlette.testclient import TestClient

from mailctl.schedule import Clock
from mailctl.sending.policy import Breaker
from mailctl.sending.transport import DEFERRED, FAILED, SENT, UNKNOWN, Outcome
from tests.support.ledger import mailing_error, states
from tests.support.web import logged_in

TIMEOUT = 1.0  # smtp.timeout in these tests (smtp_settings)


def _pass(engine, settings, bound: float):  # type: ignore[no-untyped-def]
    from mailctl.services.delivery import run_pass

    began = time.monotonic()
    summary = run_pass(
        engine=engine, settings=settings, clock=Clock.from_settings(settings), worker="test"
    )
    elapsed = time.monotonic() - began
    assert elapsed < bound, f"the pass took {elapsed:.1f}s"
    return summary


def test_silence_after_the_dot_stops_the_pass_and_it_resumes_later(
    cli, engine, fault, smtp_settings, make_mailing, owner
) -> None:
    server = fault("silent_after_dot")
    # One connection: the breaker's count across batches, in ledger order.
    settings = smtp_settings(
        server.port, delivery_circuit_breaker=3, delivery_batch_size=4, smtp_connections=1
    )
    emails = [f"r{i}@example.com" for i in range(12)]
    mailing_id = make_mailing(emails)

    # Three timeouts, across batches of four: then the pass stops, in bounded time.
    summary = _pass(engine, settings, bound=3 * TIMEOUT + 8)
    assert (summary.unknown, summary.sent, summary.deferred) == (3, 0, 0)
    assert summary.stopped is not None
    assert summary.stopped.startswith(
        "stopped after 3 consecutive messages with no reply from the server"
    )
    assert "the rest waits for the next pass" in summary.stopped
    now = states(engine, mailing_id)
    assert [e for e in emails if now[e] == "unknown"] == emails[:3]
    assert [e for e in emails if now[e] == "pending"] == emails[3:]
    assert sorted(server.received_rcpts()) == emails[:3]
    error = mailing_error(engine, mailing_id)
    assert error == summary.stopped

    # The operator sees it in `mailctl status`...
    status = cli("status")
    assert status.exit_code == 0, status.stderr
    assert f"mailing {mailing_id}: pending 9, unknown 3" in status.stdout
    assert f"last pass: {error}" in status.stdout
    # ...and the owner on the mailing's page.
    from mailctl.web.app import create_app

    with TestClient(create_app(settings), follow_redirects=False) as browser:
        page = logged_in(browser, owner.email).get(f"/mailings/{mailing_id}")
        assert page.status_code == 200
        assert "stopped after 3 consecutive messages with no reply from the server" in page.text

    # Still silent: the next pass tries one message, not three, and stops again.
    summary = _pass(engine, settings, bound=TIMEOUT + 8)
    assert summary.unknown == 1
    assert summary.stopped is not None and "as the previous pass did" in summary.stopped
    assert sum(s == "pending" for s in states(engine, mailing_id).values()) == 8

    # The server behaves again: the rest goes out, each once; the unknown ones are not resent.
    server.set_scenario("ok")
    summary = _pass(engine, settings, bound=20)
    assert (summary.sent, summary.unknown, summary.stopped) == (8, 0, None)
    received = server.received_rcpts()
    assert sorted(received) == sorted(emails) and len(received) == len(set(received))
    now = states(engine, mailing_id)
    assert [e for e in emails if now[e] == "unknown"] == emails[:4]
    assert mailing_error(engine, mailing_id) is None
    _pass(engine, settings, bound=20)
    assert len(server.received_rcpts()) == len(emails)


def test_a_server_silent_for_everyone_costs_the_breaker_count_not_the_list(
    engine, fault, smtp_settings, make_mailing
) -> None:
    """Four hundred recipients: without the breaker this pass would take 400 timeouts."""
    server = fault("silent_after_dot")
    settings = smtp_settings(server.port, delivery_circuit_breaker=2, delivery_batch_size=50)
    mailing_id = make_mailing([f"r{i}@example.com" for i in range(400)])
    summary = _pass(engine, settings, bound=2 * TIMEOUT + 8)
    assert summary.unknown == 2
    assert sum(s == "pending" for s in states(engine, mailing_id).values()) == 398


# -- the breaker's rules, on its own -------------------------------------------------------

REFUSED = Outcome(DEFERRED, None, "connect: connection refused", connection_failure=True)
SILENT = Outcome(UNKNOWN, None, "no reply after the message was sent: timed out after 30s")
ANSWERED = [
    Outcome(SENT, 250, "ok"),
    Outcome(DEFERRED, 451, "RCPT TO: 451 try later"),  # a server that answers is not down
    Outcome(FAILED, 550, "RCPT TO: 550 no such user"),
]


@pytest.mark.parametrize("answered", ANSWERED, ids=lambda o: o.status)
def test_an_answer_resets_the_count(answered: Outcome) -> None:
    breaker = Breaker(3)
    assert breaker.record(SILENT) is None and breaker.record(REFUSED) is None
    assert breaker.record(answered) is None
    assert breaker.record(SILENT) is None and breaker.record(SILENT) is None
    assert breaker.record(SILENT) is not None


def test_timeouts_unknowns_and_connection_failures_count_together() -> None:
    breaker = Breaker(3)
    assert breaker.record(REFUSED) is None
    assert breaker.record(SILENT) is None
    stop = breaker.record(REFUSED)
    assert stop is not None and stop.startswith("stopped after 3 consecutive failed attempts")


def test_after_a_stop_the_next_pass_is_half_open() -> None:
    note = Breaker(3)
    for _ in range(2):
        note.record(REFUSED)
    stop = note.record(REFUSED)
    assert stop is not None
    # The next pass reads that note on the mailing: one more failure stops it.
    again = Breaker(3)
    again.probe([None, stop])
    assert again.record(REFUSED) is not None
    # An answer closes it: the full count applies again.
    healed = Breaker(3)
    healed.probe([stop])
    assert healed.record(Outcome(SENT, 250, "ok")) is None
    healed.probe([stop])  # a later batch still carries the old note: it changes nothing now
    assert healed.record(REFUSED) is None and healed.record(REFUSED) is None
    assert healed.record(REFUSED) is not None
    # A pause (a rejected login) is not a breaker stop.
    paused = Breaker(3)
    paused.probe(["paused: the mail server rejected the login: 535"])
    assert paused.record(REFUSED) is None
