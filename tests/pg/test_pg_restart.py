"""PostgreSQL goes away in the middle of a run: the daemons wait, reconnect and finish.

Nothing is lost: every ledger row ends `sent` (or `unknown`, for a message whose outcome could
not be written while the database was down), each with its log row, and nobody gets a
message twice. The daemons stay up the whole time and still stop cleanly afterwards.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from mailctl.models import Mailing
from tests.support.ledger import attempt_statuses
from tests.support.ledger import states as ledger_states
from tests.support.scaleout import email_of, needs_postgres, wait_until_done

pytestmark = [needs_postgres, pytest.mark.postgres_only, pytest.mark.slow]

CLIENTS = 3_000
OUTAGE_SECONDS = 4


def test_daemons_survive_a_database_restart_mid_run(
    engine, ehlo_sink, big_mailing, start_daemons, local_cluster
) -> None:
    # A message in flight is only declared `unknown` after max(lease, 2 x attempt deadline).
    daemons = start_daemons(3, ehlo_sink.port, delivery_attempt_deadline_seconds=5)
    mailing_id = big_mailing(CLIENTS)

    deadline = time.monotonic() + 120
    while ehlo_sink.recorder.count() < CLIENTS // 4:
        daemons.check_alive()
        assert time.monotonic() < deadline, "the run never got going"
        time.sleep(0.05)

    local_cluster.ctl("stop")  # fast shutdown: every session is cut off mid-transaction
    try:
        stopped_at = ehlo_sink.recorder.count()
        end = time.monotonic() + OUTAGE_SECONDS
        while time.monotonic() < end:
            daemons.check_alive()
            time.sleep(0.2)
    finally:
        local_cluster.ctl("start")
    assert stopped_at < CLIENTS, "the run was over before the database went away"

    wait_until_done(engine, mailing_id, CLIENTS, timeout=240, check=daemons.check_alive)
    deadline = time.monotonic() + 60
    while True:
        with engine.connect() as conn:
            status = conn.execute(
                select(Mailing.status).where(Mailing.id == mailing_id)
            ).scalar_one()
        if status == "finished":
            break
        assert time.monotonic() < deadline, f"mailing still {status}"
        daemons.check_alive()
        time.sleep(0.5)

    states = ledger_states(engine, mailing_id)
    expected = {email_of(i) for i in range(CLIENTS)}
    assert set(states) == expected
    assert set(states.values()) <= {"sent", "unknown"}
    unknown = {e for e, s in states.items() if s == "unknown"}
    sent = expected - unknown
    # One message in flight per daemon at most, when its connection was cut.
    assert len(unknown) <= 3, sorted(unknown)

    received = ehlo_sink.recorder.per_recipient()
    assert sent <= set(received)
    assert set(received) <= expected
    assert {r for r, n in received.items() if n > 1} <= unknown

    # No lost log rows: each final state has its attempt row, and `sent` exactly once.
    log = attempt_statuses(engine, mailing_id)
    assert all(log[e]["sent"] == 1 for e in sent)
    assert all(log[e]["unknown"] >= 1 for e in unknown)

    # No crash loop: the same processes, a few failed passes while the server was away, a
    # note when it came back, and a clean exit now.
    outputs = {d.name: d.output() for d in daemons.procs}
    noticed = [name for name, out in outputs.items() if "pass failed" in out]
    print("unknown:", sorted(unknown), "stopped at", stopped_at)
    for name, out in outputs.items():
        print(name, "failed passes:", out.count("pass failed"))
        print(
            "\n".join(line for line in out.splitlines() if "pass failed" in line or "again" in line)
        )
    assert noticed, outputs
    for name in noticed:
        assert "database reachable again" in outputs[name], outputs[name][-3000:]
        assert outputs[name].count("pass failed") < 15, outputs[name][-3000:]
    for d in daemons.procs:
        assert daemons.stop(d) == 0, d.output()[-2000:]
