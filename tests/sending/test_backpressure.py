"""A relay that says "slow down" when pushed too fast: the sender slows, retries soon, recovers."""

from __future__ import annotations

import collections
import dataclasses
import time

import pytest
from sqlalchemy import select

from mailctl.config import load_settings
from mailctl.schedule import Clock
from mailctl.sending.pacing import CHECK, FLOOR, LATE, SharedLimit, T, slowed_rate
from mailctl.sending.transport import slow_down
from tests.support.ledger import attempts, delivery_states, ledger
from tests.support.procs import DELIVERY_TIMEOUT, wait_for
from tests.support.relay import Relay
from tests.support.smtp import smtp_env
from tests.support.world import World


def _pass(engine, settings):  # type: ignore[no-untyped-def]
    from mailctl.services.delivery import run_pass

    return run_pass(
        engine=engine, settings=settings, clock=Clock.from_settings(settings), worker="test"
    )


@pytest.mark.parametrize(
    "reply",
    [
        "454 4.7.0 Throttling failure: Maximum sending rate exceeded.",
        "451 4.7.1 Please slow down",
        "421 4.7.0 Too many messages, closing connection",
    ],
    ids=["ses-454", "451-4.7.1", "421-closes"],
)
def test_throttled_recipients_are_retried_in_the_same_pass_and_all_arrive_once(
    engine, smtp_settings, make_mailing, reply: str
) -> None:
    # The relay takes at most 25 messages in any second; four connections would do far more.
    with Relay(delay=0.002, throttle_rate=25, throttle_reply=reply) as relay:
        settings = smtp_settings(relay.port, smtp_connections=4, delivery_retry_first_seconds=300)
        emails = [f"t{i:03d}@example.com" for i in range(80)]
        mailing_id = make_mailing(emails)

        summary = _pass(engine, settings)

        assert relay.throttled > 0, "the relay never had to push back"
    # Every recipient went through in this one pass, once, none failed or waits 5 minutes.
    assert summary.stopped is None, summary.stopped
    assert summary.sent == 80 and summary.failed == 0
    assert relay.counts() == collections.Counter(emails)
    assert {r["state"] for r in ledger(engine, mailing_id).values()} == {"sent"}
    log = attempts(engine, mailing_id)
    throttled = [a for a in log if a["status"] == "deferred"]
    assert len(throttled) == relay.throttled
    code = int(reply[:3])
    assert all(a["response"].startswith("throttled (slow down): MAIL FROM:") for a in throttled)
    assert all(a["smtp_code"] == code for a in throttled)
    # It slowed down: far fewer refusals than messages (without slowing, about two in three
    # attempts would be refused at this pace).
    assert relay.throttled < 80


def test_a_permanent_refusal_is_still_final_under_throttling(
    engine, smtp_settings, make_mailing
) -> None:
    with Relay(throttle_rate=10, reject=frozenset({"bad@example.com"})) as relay:
        settings = smtp_settings(relay.port, smtp_connections=2)
        emails = ["bad@example.com"] + [f"g{i}@example.com" for i in range(30)]
        mailing_id = make_mailing(emails)
        summary = _pass(engine, settings)
    rows = ledger(engine, mailing_id)
    assert rows["bad@example.com"]["state"] == "failed"
    assert rows["bad@example.com"]["last_code"] == 550
    assert summary.failed == 1 and summary.sent == 30
    bad = [a for a in attempts(engine, mailing_id) if a["email"] == "bad@example.com"]
    assert [a["status"] for a in bad if a["smtp_code"] == 550] == ["failed"]


def test_what_counts_as_slow_down() -> None:
    assert slow_down(454, "4.7.0 Throttling failure: Maximum sending rate exceeded.")
    assert slow_down(451, "4.7.1 Try again later, you are sending too fast")
    assert slow_down(421, "4.3.2 Service shutting down")  # and the connection closes
    assert slow_down(450, "Requested action aborted: rate limit exceeded")
    assert not slow_down(451, "4.3.0 temporary local problem")
    assert not slow_down(452, "4.5.3 too many recipients")
    assert not slow_down(550, "5.7.1 Throttling") and not slow_down(250, "ok")


def _limit(**rates: float) -> SharedLimit:
    server = dataclasses.replace(load_settings().smtp.servers[0], name="relay", **rates)
    return SharedLimit.of(server)


def test_a_slow_down_halves_the_rate_for_every_sender_and_it_grows_back(engine) -> None:
    first, second = _limit(rate_per_second=20.0), _limit(rate_per_second=20.0)
    with engine.connect() as a, engine.connect() as b:  # two senders, one row
        assert first.slowed(a, now=100.0) == pytest.approx(10.0)
        # Replies right after a decrease answer messages sent before it: no second halving.
        assert second.slowed(b, now=100.1) == pytest.approx(10.1)  # (grown a tenth)
        assert second.slowed(b, now=101.0) == pytest.approx(5.5)  # grown by 1, then halved
        # The other sender books at the lowered rate: slots 1/5.5 apart (padded), not 1/20.
        assert second.reserve(b, now=101.0) == (0.0, True)
        wait, booked = first.reserve(a, now=101.0)
        assert booked and wait == pytest.approx((1 + LATE) / 5.5)
        # One message per second more for each second since ...
        row = _row(engine)
        assert slowed_rate(row, 105.0) == pytest.approx(9.5)
        # ... until the rate it was slowed from: then full speed for everyone.
        assert slowed_rate(row, 116.0) is None
        first.reserve(a, now=116.0)
        assert _row(engine).throttle_rate is None
        assert _limit().slowed(a, now=200.0) >= FLOOR


def test_a_server_without_limits_is_paced_once_another_sender_slowed_it(engine) -> None:
    ours, theirs = _limit(), _limit()
    with engine.connect() as a, engine.connect() as b:
        assert not ours.paced(a)
        began = time.monotonic() - 2.0
        for i in range(40):  # that sender sent 20 a second for two seconds
            theirs.started(now=began + i * 0.05)
        assert theirs.slowed(b) == pytest.approx(10.0, rel=0.05)
        # Within CHECK seconds every sender has looked at the row again.
        ours._checked -= CHECK
        assert ours.paced(a)
        now = time.time()
        assert ours.reserve(a, now=now) == (0.0, True)
        # The next slot is one interval at the lowered rate (10 a second) on.
        wait, booked = ours.reserve(a, now=now + 0.05)
        assert booked and wait == pytest.approx(0.05, abs=0.005)


def _row(engine):  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return conn.execute(select(T).where(T.c.name == "relay")).one()


def test_a_slow_down_another_sender_saw_slows_this_one(engine, smtp_settings, make_mailing) -> None:
    """The shared row says a sender elsewhere was told to slow down (2 msg/s, from 100):
    this pass, against a relay that never complains, paces itself by it and speeds up."""
    from mailctl.sending.pacing import ensure_row

    with engine.begin() as conn:
        ensure_row(conn, "smtp")
        conn.execute(
            T.update()
            .where(T.c.name == "smtp")
            .values(throttle_rate=2.0, throttle_peak=100.0, throttled_at=time.time())
        )
    with Relay(delay=0.001) as relay:
        settings = smtp_settings(relay.port, smtp_connections=4)
        emails = [f"s{i}@example.com" for i in range(8)]
        mailing_id = make_mailing(emails)
        summary = _pass(engine, settings)
        times = sorted(relay.times())
    assert summary.sent == 8 and relay.counts() == collections.Counter(emails)
    assert {r["state"] for r in ledger(engine, mailing_id).values()} == {"sent"}
    # Paced: at 2, 3, 4 ... messages a second, eight take well over a second (unpaced, four
    # connections to a local relay send them in milliseconds), never two close together.
    assert times[-1] - times[0] > 1.2
    assert min(b - a for a, b in zip(times, times[1:], strict=False)) > 0.08


@pytest.mark.slow
def test_two_senders_throttled_together_all_arrive_once(engine, world: World, spawn) -> None:  # type: ignore[no-untyped-def]
    """Two sender processes against a relay that takes 10 a second: the slow-downs go into
    the shared row, everyone arrives once, and the refusals stay well below the messages."""
    clients = 60
    mailing_id, emails = world.mailing(clients)
    with Relay(delay=0.002, throttle_rate=10) as relay:
        senders = [
            spawn(
                "run-due",
                env=smtp_env(
                    relay.port,
                    smtp_connections=2,
                    smtp_local_hostname=f"sender-{i}",
                    delivery_batch_size=5,
                ),
                name=f"sender-{i}",
            )
            for i in (1, 2)
        ]
        wait_for(lambda: len(relay.rcpts()) >= clients, timeout=DELIVERY_TIMEOUT, what="delivery")
        for sender in senders:
            wait_for(lambda s=sender: not s.alive(), timeout=60, what="run-due to end")  # type: ignore[misc]
        throttled = relay.throttled
    assert relay.counts() == collections.Counter(emails)
    assert delivery_states(engine, mailing_id) == {"sent": clients}
    row = _row_named(engine, "smtp")
    assert throttled > 0 and row.throttled_at > 0 and row.throttle_peak > 0
    assert throttled < clients


def _row_named(engine, name: str):  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return conn.execute(select(T).where(T.c.name == name)).one()
