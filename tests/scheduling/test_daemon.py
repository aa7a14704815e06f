"""`mailctl daemon`: timed and periodic runs by themselves, shared work, clean stops, outages.

The slow tests run real `python -m mailctl` processes against a real aiosmtpd sink; the
fast ones drive the Daemon object and `mailctl status` in-process.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from mailctl.db import session_scope, utcnow
from mailctl.models import Delivery, Mailing, MailingClient, MailingRun
from mailctl.schedule import Clock
from mailctl.scheduling import heartbeat
from mailctl.scheduling.daemon import Daemon
from mailctl.services import delivery
from tests.support.ledger import (
    delivery_states,
    mailing_row,
    runs_of,
    sent_per_client,
    worker_rows,
)
from tests.support.procs import DELIVERY_TIMEOUT, START_TIMEOUT, daemon_ready, later, wait_for
from tests.support.smtp import free_port, smtp_env
from tests.support.world import World

# -- the daemon in-process --------------------------------------------------------------------


def _daemon(settings, engine: Engine, tick: int = 30) -> Daemon:  # type: ignore[no-untyped-def]
    return Daemon(engine, settings.with_overrides("scheduler", tick_seconds=tick))


def test_wakes_at_the_next_due_time_or_after_a_tick(settings, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    d = _daemon(settings, engine, tick=30)
    now = utcnow()
    assert d.wake_time(None, busy=False, now=now) == now + timedelta(seconds=30)
    assert d.wake_time(now + timedelta(seconds=5), busy=False, now=now) == now + timedelta(
        seconds=5
    )
    assert d.wake_time(now + timedelta(hours=1), busy=False, now=now) == now + timedelta(seconds=30)
    # Already due: soon after a pass that did work, a tick after one that did nothing.
    assert d.wake_time(now - timedelta(seconds=1), busy=True, now=now) == now + timedelta(seconds=1)
    assert d.wake_time(now - timedelta(seconds=1), busy=False, now=now) == now + timedelta(
        seconds=30
    )


def test_next_due_is_the_earliest_run_or_retry_of_enabled_mailings(
    engine: Engine, world: World
) -> None:
    assert delivery.next_due(engine) == world.start  # the roles' own mailings
    world.pause_own_mailings()
    assert delivery.next_due(engine) is None
    run_at = later(3600)
    first, _ = world.mailing(2, start=run_at)
    assert delivery.next_due(engine) == run_at
    second, _ = world.mailing(1, start=later(7200))
    retry_at = later(60)
    # The second mailing has no run left, but a deferred retry that comes before any run.
    with session_scope(engine) as s:
        s.execute(update(Mailing).where(Mailing.id == second).values(next_run_at=None))
        run = MailingRun(mailing_id=second, scheduled_at=utcnow())
        s.add(run)
        s.flush()
        client_id = s.execute(
            select(MailingClient.client_id).where(MailingClient.mailing_id == second)
        ).scalar_one()
        s.add(
            Delivery(
                run_id=run.id or 0,
                mailing_id=second,
                client_id=client_id,
                email="x@example.com",
                state="deferred",
                next_attempt_at=retry_at,
            )
        )
    assert delivery.next_due(engine) == retry_at
    with engine.begin() as conn:
        conn.execute(update(Mailing).where(Mailing.id == second).values(is_enabled=False))
    assert delivery.next_due(engine) == run_at
    with engine.begin() as conn:
        conn.execute(update(Mailing).where(Mailing.id == first).values(is_enabled=False))
    assert delivery.next_due(engine) is None


def test_a_tick_survives_a_broken_database_and_backs_off(
    settings, engine: Engine, caplog: pytest.LogCaptureFixture, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from mailctl.db import make_engine

    broken = make_engine(
        settings.with_overrides("database", url=f"sqlite:///{tmp_path / 'nothing-here.db'}")
    )
    d = Daemon(broken, settings.with_overrides("scheduler", tick_seconds=2))
    caplog.set_level(logging.INFO, logger="mailctl.daemon")
    waits = []
    for _ in range(4):
        began = utcnow()
        waits.append(round((d.tick() - began).total_seconds()))
    assert waits == [2, 4, 8, 16]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 4 and all("\n" not in r.getMessage() for r in errors)
    assert "no database at" in errors[0].getMessage()
    assert "mailctl init" in errors[0].getMessage()
    assert not (tmp_path / "nothing-here.db").exists()  # waited for, never created
    # Once the database is there, the next tick works and says so.
    d.engine = engine
    d.tick()
    assert d.failures == 0
    assert any("reachable again" in r.getMessage() for r in caplog.records)
    broken.dispose()


def test_run_delivers_heartbeats_and_stops_cleanly(settings, engine: Engine, world: World) -> None:  # type: ignore[no-untyped-def]
    mailing_id, emails = world.mailing(3)
    d = _daemon(settings, engine, tick=1)
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(d.run(install_signals=False)))
    thread.start()
    try:
        wait_for(lambda: delivery_states(engine, mailing_id)["sent"] == 3, timeout=60, what="sends")
        wait_for(lambda: worker_rows(engine), timeout=30, what="a heartbeat")
    finally:
        d.request_stop("test")
        thread.join(timeout=60)
    assert not thread.is_alive() and result == [0]
    (row,) = worker_rows(engine)
    assert row["kind"] == "daemon" and row["state"] == "stopped" and row["id"] == d.worker
    assert sent_per_client(engine, mailing_id) == {e: 1 for e in emails}


def test_status_shows_heartbeats_next_runs_and_waiting_counts(
    bare_cli, engine: Engine, world: World
) -> None:  # type: ignore[no-untyped-def]
    cli = bare_cli  # as the world's admin
    world.pause_own_mailings()
    future, _ = world.mailing(2, start=later(3600))
    now = utcnow()
    heartbeat.beat(engine, worker="daemon:alive:1", kind="daemon", now=now)
    heartbeat.beat(engine, worker="daemon:dead:2", kind="daemon", now=now - timedelta(hours=1))
    heartbeat.beat(
        engine, worker="daemon:gone:3", kind="daemon", state="stopped", now=now - timedelta(hours=2)
    )
    due, _ = world.mailing(2)
    with engine.begin() as conn:
        conn.execute(update(Mailing).where(Mailing.id == due).values(is_enabled=False))
    result = cli("status", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    stale = {w["id"]: w["stale"] for w in data["workers"]}
    assert stale == {"daemon:alive:1": False, "daemon:dead:2": True, "daemon:gone:3": False}
    assert [r["mailing_id"] for r in data["next_runs"]] == [future]
    assert data["next_runs"][0]["next_run_at"].endswith("+00:00")
    assert data["totals"] == {"pending": 0, "sending": 0, "deferred": 0, "unknown": 0}

    text = cli("status")
    assert text.exit_code == 0
    assert "daemon:dead:2" in text.stdout and "STALE" in text.stdout
    assert f"mailing {future}" in text.stdout
    assert "CET" in text.stdout or "CEST" in text.stdout


# -- real daemons, real SMTP ------------------------------------------------------------------


@pytest.mark.slow
def test_a_mailing_starting_later_goes_out_by_itself(cli, engine, start_sink, spawn) -> None:  # type: ignore[no-untyped-def]
    sink = start_sink()
    daemon = spawn("daemon", env=smtp_env(sink.port), name="daemon")
    wait_for(daemon_ready(engine, daemon), timeout=START_TIMEOUT, what="the daemon to start")

    emails = ["ann@example.com", "bob@example.com", "cy@example.com"]
    for email in emails:
        assert cli("client", "add", email).exit_code == 0
    assert cli("message", "add", "--subject", "Soon", "--body", "Hello").exit_code == 0
    created = time.time()
    result = cli("mailing", "add", "--message", "1", "--all-clients", "--start", "+3s",
                 "--every", "once")  # fmt: skip
    assert result.exit_code == 0, result.output
    mailing_id = int(result.stdout)
    assert sink.handler.total() == 0  # nothing sent on creation: the start is still ahead

    wait_for(lambda: sink.handler.total() >= 3, timeout=DELIVERY_TIMEOUT, what="delivery")
    assert sink.handler.counts() == {e: 1 for e in emails}
    assert min(sink.handler.times()) >= created + 2.5  # not before its start time
    wait_for(lambda: mailing_row(engine, mailing_id)["status"] == "finished", timeout=60)
    code, took = daemon.terminate()
    assert code == 0, daemon.log()
    assert "Traceback" not in daemon.log()


@pytest.mark.slow
def test_a_periodic_mailing_runs_again_after_its_period(
    engine, world: World, start_sink, spawn, monkeypatch
) -> None:  # type: ignore[no-untyped-def]

    period = 3
    monkeypatch.setenv("MAILCTL_TEST_PERIOD_SECONDS", str(period))
    sink = start_sink()
    daemon = spawn("daemon", env=smtp_env(sink.port), name="daemon")
    wait_for(daemon_ready(engine, daemon), timeout=START_TIMEOUT, what="the daemon to start")
    mailing_id, emails = world.mailing(
        3, start=later(1), every="day", clock=Clock(tz="Europe/Berlin", period_seconds=period)
    )

    def two_runs_done() -> bool:
        runs = runs_of(engine, mailing_id)
        return len(runs) >= 2 and all(r["finished_at"] for r in runs[:2])

    wait_for(two_runs_done, timeout=DELIVERY_TIMEOUT, what="two finished runs")
    code, _ = daemon.terminate()
    assert code == 0, daemon.log()

    runs = runs_of(engine, mailing_id)
    first, second = runs[0], runs[1]
    gap = (second["scheduled_at"] - first["scheduled_at"]).total_seconds()
    assert gap > 0 and gap % period == 0  # the next period (a late daemon coalesces)
    assert second["started_at"] >= second["scheduled_at"]
    # Each client exactly once per run: what the sink got is what the ledger says was sent.
    assert sink.handler.counts() == sent_per_client(engine, mailing_id)
    with engine.connect() as conn:
        for run in runs[:2]:
            sent = conn.execute(
                select(Delivery.email).where(Delivery.run_id == run["id"], Delivery.state == "sent")
            ).scalars()
            assert sorted(sent) == sorted(emails)
    assert all(sink.handler.counts()[e] >= 2 for e in emails)
    assert mailing_row(engine, mailing_id)["status"] == "started"


@pytest.mark.slow
def test_two_run_due_and_a_daemon_send_each_client_once(
    engine, world: World, start_sink, spawn
) -> None:  # type: ignore[no-untyped-def]
    clients = 1000
    sink = start_sink()
    mailing_id, emails = world.mailing(clients)
    env = smtp_env(sink.port, delivery_batch_size=50)
    procs = [
        spawn("daemon", env=env, name="daemon"),
        spawn("run-due", env=env, name="run-due-a"),
        spawn("run-due", env=env, name="run-due-b"),
    ]
    daemon = procs[0]

    def all_sent() -> bool:
        if not daemon.alive():
            raise AssertionError(daemon.log())
        return delivery_states(engine, mailing_id)["sent"] == clients

    wait_for(all_sent, timeout=DELIVERY_TIMEOUT * 2, interval=0.5, what="1,000 deliveries")
    for proc in procs[1:]:
        assert proc.wait(timeout=DELIVERY_TIMEOUT) == 0, proc.log()
    assert daemon.terminate()[0] == 0, daemon.log()

    counts = sink.handler.counts()
    assert len(counts) == clients and set(counts) == set(emails)
    assert [e for e, n in counts.items() if n != 1] == []
    assert len(runs_of(engine, mailing_id)) == 1
    assert delivery_states(engine, mailing_id) == {"sent": clients}
    # What the three processes say they sent adds up to one message per client.
    reported = [sum(int(n) for n in re.findall(r"\bsent (\d+)", p.log())) for p in procs]
    print("sent by daemon, run-due, run-due:", reported)
    assert sum(reported) == clients


@pytest.mark.slow
def test_sigterm_mid_run_exits_cleanly_and_a_restart_finishes(
    engine, world: World, start_sink, spawn
) -> None:  # type: ignore[no-untyped-def]
    clients = 400
    sink = start_sink(delay=0.01)
    mailing_id, emails = world.mailing(clients)
    env = smtp_env(sink.port, delivery_batch_size=50)
    first = spawn("daemon", env=env, name="daemon-1")
    wait_for(lambda: sink.handler.total() >= 20 or not first.alive(), timeout=START_TIMEOUT * 2,
             what="the run to be under way")  # fmt: skip
    code, took = first.terminate()
    assert code == 0, first.log()
    assert took < 10, f"took {took:.1f}s to stop"
    assert "received SIGTERM" in first.log() and "Traceback" not in first.log()

    states = delivery_states(engine, mailing_id)
    assert 0 < states["sent"] < clients, states  # stopped mid-run
    assert states["sending"] == 0 and states["unknown"] == 0
    with engine.connect() as conn:
        claimed = conn.execute(
            select(Delivery.id).where(Delivery.claimed_by.is_not(None))  # type: ignore[union-attr]
        ).all()
    assert claimed == []  # claims released, not left to expire
    assert sink.handler.total() == states["sent"]
    (row,) = worker_rows(engine)
    assert row["state"] == "stopped"

    second = spawn("daemon", env=env, name="daemon-2")
    wait_for(lambda: delivery_states(engine, mailing_id)["sent"] == clients,
             timeout=DELIVERY_TIMEOUT, interval=0.5, what="the rest")  # fmt: skip
    assert second.terminate()[0] == 0, second.log()
    counts = sink.handler.counts()
    assert set(counts) == set(emails) and set(counts.values()) == {1}


@pytest.mark.slow
def test_daemon_rides_out_a_mail_server_outage_while_the_cli_works(
    engine, world: World, start_sink, spawn
) -> None:  # type: ignore[no-untyped-def]
    port = free_port()  # nothing listens here yet
    mailing_id, emails = world.mailing(3)
    daemon = spawn("daemon", env=smtp_env(port), name="daemon")

    def deferred_and_retried() -> bool:
        with engine.connect() as conn:
            attempts = (
                conn.execute(select(Delivery.attempts).where(Delivery.mailing_id == mailing_id))
                .scalars()
                .all()
            )
        return len(attempts) == 3 and min(attempts) >= 2  # tried, backed off, tried again

    wait_for(deferred_and_retried, timeout=DELIVERY_TIMEOUT, what="failed attempts")
    assert daemon.alive(), daemon.log()
    assert delivery_states(engine, mailing_id)["sent"] == 0

    # Meanwhile the CLI works against the same database, in its own process.
    listed = subprocess.run(
        [sys.executable, "-m", "mailctl", "mailing", "list", "--json"],
        capture_output=True, text=True, timeout=START_TIMEOUT,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert [m["id"] for m in json.loads(listed.stdout)] == [*world.mailings.values(), mailing_id]
    status = subprocess.run(
        [sys.executable, "-m", "mailctl", "status", "--json"],
        capture_output=True, text=True, timeout=START_TIMEOUT,
    )  # fmt: skip
    assert status.returncode == 0, status.stderr
    assert (
        json.loads(status.stdout)["totals"]["deferred"]
        + json.loads(status.stdout)["totals"]["sending"]
        >= 1
    )

    sink = start_sink(port)
    wait_for(lambda: sink.handler.total() >= 3, timeout=DELIVERY_TIMEOUT, what="delivery")
    wait_for(lambda: delivery_states(engine, mailing_id)["sent"] == 3, timeout=60)
    assert daemon.alive(), daemon.log()
    assert daemon.terminate()[0] == 0, daemon.log()
    assert sink.handler.counts() == {e: 1 for e in emails}
    assert "Traceback" not in daemon.log()
