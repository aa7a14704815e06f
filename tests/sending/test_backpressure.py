"""A relay that says "slow down" when pushed too fast: the sender slows, retries soon, recovers."""

from __future__ import annotations

import collections

import pytest

from mailctl.schedule import Clock
from mailctl.sending.pacing import Throttle
from mailctl.sending.transport import slow_down
from tests.support.ledger import attempts, ledger
from tests.support.relay import Relay


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


def test_the_rate_halves_on_each_slow_down_and_grows_back_one_per_second() -> None:
    throttle = Throttle()
    for i in range(40):  # 20 messages a second for two seconds
        throttle.wait(now=100.0 + i * 0.05)
    assert throttle.slowed(now=102.0) == pytest.approx(10.0)
    assert throttle.slowed(now=102.0) == pytest.approx(5.0)
    # While throttled, starts are spaced by 1/rate ...
    first = throttle.wait(now=102.0)
    second = throttle.wait(now=102.0)
    assert first == 0 and 0.15 < second < 0.25
    # ... the rate grows by one per second ...
    throttle.wait(now=106.0)
    assert throttle.rate is not None and 8.5 < throttle.rate < 9.5
    # ... and once back at the rate it had, the throttle lets go.
    throttle.wait(now=120.0)
    assert throttle.rate is None and throttle.wait(now=120.1) == 0
    assert Throttle().slowed(now=0) >= Throttle.FLOOR
