"""The shared schedule itself, on the test's database: slots, windows, quotas."""

from __future__ import annotations

import dataclasses

import pytest

from mailctl.config import load_settings
from mailctl.sending.pacing import LATE, QuotaReached, SharedLimit


def _limit(**rates: float) -> SharedLimit:
    server = dataclasses.replace(load_settings().smtp.servers[0], name="relay", **rates)
    return SharedLimit.of(server)


def test_no_limit_means_no_schedule(engine) -> None:
    limit = SharedLimit.of(load_settings().smtp.servers[0])
    assert not limit.limited
    with engine.connect() as conn:
        assert not limit.paced(conn)  # unless some sender slowed it (test_backpressure)


def test_slots_are_one_padded_interval_apart_and_only_the_next_one_is_booked(engine) -> None:
    limit = _limit(rate_per_second=10.0)
    # 1/R padded by the lateness a final dot may have: any one second holds at most R.
    interval = (1 + LATE) / 10
    assert limit.interval(10.0) == pytest.approx(interval)
    with engine.connect() as first, engine.connect() as second:  # two senders, one row
        assert limit.reserve(first, now=1000.0) == (0.0, True)
        wait, booked = limit.reserve(second, now=1000.0)
        assert booked and wait == pytest.approx(interval)
        # The slot after that is more than one interval away: ask again later, book nothing.
        wait, booked = limit.reserve(first, now=1000.0)
        assert not booked and interval <= wait <= interval * 1.5
        wait, booked = limit.reserve(first, now=1000.15)
        assert booked and wait == pytest.approx(2 * interval - 0.15)
        # A sender that comes late starts now, not in a slot of the past.
        assert limit.reserve(second, now=1010.0) == (0.0, True)


def test_a_full_window_is_a_quota_reached_until_the_next_one(engine) -> None:
    limit = _limit(rate_per_minute=2, rate_per_day=1000)
    with engine.connect() as conn:
        assert limit.reserve(conn, now=600.0) == (0.0, True)
        assert limit.reserve(conn, now=630.0) == (0.0, True)
        with pytest.raises(QuotaReached) as reached:
            limit.reserve(conn, now=659.0)
        assert reached.value.until == 660.0 and reached.value.window == "minute"
        assert "relay has sent its quota of 2 messages per minute" in str(reached.value)
        # Nothing was booked by the refusal; the next minute opens a new window.
        assert limit.reserve(conn, now=660.0) == (0.0, True)


def test_a_slot_booked_again_counts_no_second_message_against_the_quota(engine) -> None:
    limit = _limit(rate_per_second=10.0, rate_per_minute=2)
    with engine.connect() as conn:
        assert limit.reserve(conn, now=600.0) == (0.0, True)
        # Its sender missed that slot: it books another, the quota still holds one more.
        assert limit.reserve(conn, now=601.0, count=False) == (0.0, True)
        assert limit.reserve(conn, now=602.0) == (0.0, True)
        with pytest.raises(QuotaReached):
            limit.reserve(conn, now=603.0)
