"""A shared per-second limit holds in every one-second window at the sink, not just on
average: two sender processes, four connections each, at R messages per second.

A design that lets a second's worth of messages go at once (a token bucket holding R, a
count per calendar second) puts up to 2R into the window that straddles two such bursts; a
schedule booked before the envelope and sent whenever its sender gets there bunches late
messages with the ones after them. The limit here books each final dot's moment and gives a
missed moment back, so at most R arrive in any second (one more is allowed for a machine that
stalls a sender between its check and the wire, far below what any burst design gives).
"""

from __future__ import annotations

import collections

import pytest

from tests.support.ledger import delivery_states
from tests.support.procs import DELIVERY_TIMEOUT, wait_for
from tests.support.relay import Relay
from tests.support.smtp import smtp_env
from tests.support.world import World

RATE = 8


def busiest(times: list[float]) -> int:
    """The most arrivals within any one second (a sliding window, [t, t + 1))."""
    times = sorted(times)
    most, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


def test_the_window_count_catches_a_burst() -> None:
    # What the assertions below would see of a design sending R at the top of each second.
    straddling = [0.9 + i * 0.001 for i in range(RATE)] + [1.0 + i * 0.001 for i in range(RATE)]
    assert busiest(straddling) == 2 * RATE
    assert busiest([i / RATE for i in range(3 * RATE)]) == RATE


@pytest.mark.slow
def test_no_second_holds_more_than_the_limit_with_two_senders(engine, world: World, spawn) -> None:  # type: ignore[no-untyped-def]
    clients = RATE * 6
    mailing_id, emails = world.mailing(clients)
    with Relay(delay=0.005) as relay:
        senders = [
            spawn(
                "run-due",
                env=smtp_env(
                    relay.port,
                    smtp_connections=4,
                    smtp_rate_per_second=RATE,
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
            assert sender.popen.returncode == 0, sender.log()
    assert relay.counts() == {e: 1 for e in emails}
    assert delivery_states(engine, mailing_id) == {"sent": clients}
    times = sorted(relay.times())
    # Both senders sent (the schedule is shared, not one sender's alone) ...
    assert len(relay.per_sender()) == 2, relay.per_sender()
    # ... in no second above the limit (each sender alone would send R a second) ...
    assert busiest(times) <= RATE + 1, [round(b - a, 3) for a, b in zip(times, times[1:])]
    # ... and not slower than the limit by much: the schedule's padding is 1 %.
    assert (len(times) - 1) / (times[-1] - times[0]) >= RATE * 0.8


def _per_second(times: list[float]) -> dict[int, int]:
    start = int(times[0])
    return dict(collections.Counter(int(t) - start for t in times))
