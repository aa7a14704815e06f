"""One rate limit for every sender: two daemons share it through the database; a quota
reached mid-run pauses the run until the next window, visibly, and it then goes on."""

from __future__ import annotations

import time

import pytest

from mailctl.schedule import Clock
from tests.support.ledger import delivery_states, mailing_row
from tests.support.procs import DELIVERY_TIMEOUT, START_TIMEOUT, daemon_ready, wait_for
from tests.support.relay import Relay
from tests.support.smtp import smtp_env
from tests.support.world import World

RATE = 20


def _busiest_second(times: list[float]) -> int:
    """The most messages that arrived within any one second (a sliding window)."""
    times = sorted(times)
    most, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


@pytest.mark.slow
def test_two_daemons_share_one_rate_limit(engine, world: World, spawn) -> None:  # type: ignore[no-untyped-def]
    clients = 100
    with Relay(delay=0.005) as relay:
        daemons = [
            spawn(
                "daemon",
                env=smtp_env(
                    relay.port,
                    smtp_connections=4,
                    smtp_rate_per_second=RATE,
                    smtp_local_hostname=f"daemon-{i}",
                    delivery_batch_size=10,
                ),
                name=f"daemon-{i}",
            )
            for i in (1, 2)
        ]
        for daemon in daemons:
            wait_for(daemon_ready(engine, daemon), timeout=START_TIMEOUT, what="the daemons")
        mailing_id, emails = world.mailing(clients)
        wait_for(lambda: len(relay.rcpts()) >= clients, timeout=DELIVERY_TIMEOUT, what="delivery")
        for daemon in daemons:
            code, _ = daemon.terminate()
            assert code == 0, daemon.log()
    assert relay.counts() == {e: 1 for e in emails}
    assert delivery_states(engine, mailing_id) == {"sent": clients}
    shares = relay.per_sender()
    assert set(shares) == {"daemon-1", "daemon-2"}, shares  # both sent, yet together ...
    times = sorted(relay.times())
    # ... not faster than the limit overall, and in no second much above it. Each message
    # starts in its own slot, 1/RATE apart; a sender the machine's load wakes late still
    # sends in its slot's turn, so arrivals can bunch a little. Without the shared limit each
    # daemon alone would send RATE a second: twice the limit.
    assert (len(times) - 1) / (times[-1] - times[0]) <= RATE * 1.05
    assert _busiest_second(times) <= RATE * 1.25


@pytest.mark.slow
def test_a_quota_reached_mid_run_pauses_it_until_the_next_window(
    bare_cli, engine, world: World, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from mailctl.services.delivery import run_pass

    window = 6  # seconds: MAILCTL_TEST_PERIOD_SECONDS shrinks the quota windows too
    monkeypatch.setenv("MAILCTL_TEST_PERIOD_SECONDS", str(window))
    with Relay() as relay:
        for key, value in smtp_env(relay.port, smtp_rate_per_day=5).items():
            monkeypatch.setenv(key, value)
        from mailctl.config import load_settings

        settings = load_settings()
        clock = Clock(tz="UTC", period_seconds=None)
        mailing_id, emails = world.mailing(12)

        first = run_pass(engine=engine, settings=settings, clock=clock, worker="first")
        assert first.sent in (5, 10), first  # one window, or two if the next opened at once
        assert first.failed == first.deferred == 0
        assert first.stopped is not None and first.stopped.startswith(
            "waiting: smtp has sent its quota of 5 messages per day; sending resumes at"
        )
        # A pause, not a failure: the rest is pending, the mailing says what it waits for, as
        # a state of its own (not its last error).
        states = delivery_states(engine, mailing_id)
        assert states == {"sent": first.sent, "pending": 12 - first.sent}
        row = mailing_row(engine, mailing_id)
        assert row["last_error"] is None and row["quota_server"] == "smtp"
        assert row["quota_until"] is not None
        waiting = "waiting for quota of smtp: resumes at "
        status = bare_cli("status")
        assert status.exit_code == 0, status.stderr
        assert waiting in status.stdout and "last pass:" not in status.stdout
        for command in (
            ["mailing", "show", str(mailing_id)],
            ["mailing", "report", str(mailing_id)],
        ):
            shown = bare_cli(*command)
            assert shown.exit_code == 0, shown.stderr
            assert waiting in shown.stdout, shown.stdout

        # The same window: nothing more goes, nothing is tried.
        again = run_pass(engine=engine, settings=settings, clock=clock, worker="again")
        assert again.sent == 0 or first.sent + again.sent <= 12

        # The next window opens: the run goes on where it stopped.
        time.sleep(window + 0.5)
        later = run_pass(engine=engine, settings=settings, clock=clock, worker="later")
        assert later.sent >= 2
        total = first.sent + again.sent + later.sent
        assert len(relay.rcpts()) == total
    assert relay.counts() == {e: 1 for e in relay.rcpts()}
    assert set(relay.rcpts()) <= set(emails)
