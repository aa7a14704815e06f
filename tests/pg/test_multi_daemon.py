"""Several daemons share one big mailing through PostgreSQL: each client once, each daemon some.

The work is split by `claim_batch` (FOR UPDATE SKIP LOCKED); a daemon killed mid-run leaves its
batch to the others once its lease runs out, and its in-flight row becomes `unknown`.
"""

from __future__ import annotations

import signal

import pytest

from tests.support.ledger import attempt_statuses
from tests.support.ledger import states as ledger_states
from tests.support.scaleout import email_of, needs_postgres, wait_until_done

pytestmark = [needs_postgres, pytest.mark.postgres_only, pytest.mark.slow]

CLIENTS = 5_000


def test_three_daemons_send_each_client_once_and_share_the_work(
    engine, ehlo_sink, big_mailing, start_daemons
) -> None:
    daemons = start_daemons(3, ehlo_sink.port)
    mailing_id = big_mailing(CLIENTS)

    wait_until_done(engine, mailing_id, CLIENTS, timeout=240, check=daemons.check_alive)

    received = ehlo_sink.recorder.per_recipient()
    expected = {email_of(i) for i in range(CLIENTS)}
    assert set(received) == expected
    assert [r for r, n in received.items() if n > 1] == []
    assert set(ledger_states(engine, mailing_id).values()) == {"sent"}
    log = attempt_statuses(engine, mailing_id)
    assert all(log[e] == {"sent": 1} for e in expected)

    shares = ehlo_sink.recorder.per_sender()
    print("shares:", dict(shares))
    assert set(shares) == {"daemon-1", "daemon-2", "daemon-3"}, shares
    assert sum(shares.values()) == CLIENTS
    # Each daemon claimed batches of 50 while the others did too: nobody was left out.
    assert min(shares.values()) >= 50, shares

    for d in daemons.procs:
        assert daemons.stop(d) == 0, d.output()[-2000:]


def test_a_killed_daemon_leaves_its_batch_to_the_others(
    engine, ehlo_sink, big_mailing, start_daemons
) -> None:
    # A message in flight is only declared `unknown` after max(lease, 2 x attempt deadline).
    daemons = start_daemons(3, ehlo_sink.port, delivery_attempt_deadline_seconds=5)
    victim = daemons.procs[0]
    # Mid-batch and mid-message: the sink has taken the message in and holds its reply back.
    ehlo_sink.recorder.hold(victim.name, after=220)
    mailing_id = big_mailing(CLIENTS)

    assert ehlo_sink.recorder.held.wait(120), "daemon-1 never got going"
    daemons.check_alive()
    assert ehlo_sink.recorder.count() < CLIENTS // 2, "the run was nearly over before the kill"
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait(10)
    ehlo_sink.recorder.release()
    survivors = daemons.procs[1:]
    killed_at = ehlo_sink.recorder.per_sender()[victim.name]
    in_flight = ehlo_sink.recorder.held_rcpt

    def survivors_alive() -> None:
        for d in survivors:
            assert d.alive(), f"{d.name} died:\n{d.output()[-3000:]}"

    wait_until_done(engine, mailing_id, CLIENTS, timeout=240, check=survivors_alive)

    states = ledger_states(engine, mailing_id)
    received = ehlo_sink.recorder.per_recipient()
    expected = {email_of(i) for i in range(CLIENTS)}
    assert set(states) == expected
    unknown = {e for e, s in states.items() if s == "unknown"}
    # Only the message in flight when the process died; the rest of its batch was sent.
    assert set(states.values()) == {"sent", "unknown"}
    assert unknown == {in_flight}
    # Every client was sent to, except perhaps the unknown ones ...
    assert expected - unknown <= set(received)
    assert {e for e, s in states.items() if s == "sent"} <= set(received)
    # ... and nobody twice, except perhaps among the unknown ones.
    assert {r for r, n in received.items() if n > 1} <= unknown
    assert set(received) <= expected

    # The dead daemon sent nothing more; the others took over its batch after the lease.
    shares = ehlo_sink.recorder.per_sender()
    print("shares:", dict(shares), "unknown:", sorted(unknown))
    assert shares[victim.name] == killed_at
    assert all(shares[d.name] > 0 for d in survivors), shares
    log = attempt_statuses(engine, mailing_id)
    for email in unknown:
        assert log[email]["unknown"] == 1, (email, log[email])
    assert all(log[e]["sent"] == 1 for e, s in states.items() if s == "sent")

    for d in survivors:
        assert daemons.stop(d) == 0, d.output()[-2000:]
