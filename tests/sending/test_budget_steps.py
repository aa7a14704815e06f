"""Single steps that no tick can interrupt: each is sized or refused before it runs, and the
clock is read after every step, so a render stops at its deadline, not several steps later.

A loop over a step that is slow in C (`s | max` over a 900 kB string takes a third of a
second) ticked the meter a few times per step, and the clock was read only every 32 ticks:
the review measured 5.7 s for a 1 s budget. Codecs written in Python that are quadratic
(punycode, idna), `int.to_bytes` with a huge length, and numbers of millions of bits built in
linear time (then divided, quadratically) were not sized at all.
"""

from __future__ import annotations

import time
import tracemalloc

import pytest

from mailctl.errors import Invalid
from mailctl.sending.budget import BudgetExceeded, RenderLimits
from mailctl.sending.budget import now as budget_now
from mailctl.sending.render import RenderClient
from mailctl.sending.sandbox import DEFAULT_LIMITS, Sandbox, metered, render_metered
from mailctl.services import messages

# 3,000 distinct CJK characters: punycode takes about 2 s over them, 30,000 take minutes.
CJK = "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(3000))
BIG = "{% set s = 'a' * 900000 %}"
CODEC = "not allowed in a template: the {} codec"
NUMBER = "computes a number of more than 100,000 bits"
VALUE = "builds a value of more than 1,000,000 bytes"
TIME = "takes longer than 1s to render"

BOMBS = [
    pytest.param(
        f"{{% set s %}}{CJK}{{% endset %}}{{{{ s.encode('punycode') | length }}}}",
        CODEC.format("punycode"),
        id="punycode-encode",
    ),
    pytest.param(
        f"{{% set s %}}{CJK}{{% endset %}}{{{{ s.encode(encoding='IDNA') | length }}}}",
        CODEC.format("idna"),
        id="idna-encode-by-keyword-and-alias",
    ),
    pytest.param(
        "{{ ('-' ~ 'b' * 30000).encode().decode('punycode') | length }}",
        CODEC.format("punycode"),
        id="punycode-decode",
    ),
    pytest.param(
        "{% set n = 1 %}{{ n.to_bytes(300000000, 'big') | length }}", VALUE, id="to-bytes"
    ),
    pytest.param(
        "{% set n = 1 %}{{ n.to_bytes(length=300000000) | length }}", VALUE, id="to-bytes-keyword"
    ),
    pytest.param(
        "{{ (('f' * 250000) | int(base=16)).bit_length() }}", NUMBER, id="hex-number-filter"
    ),
    pytest.param(
        "{{ (1).from_bytes(('x' * 900000).encode(), 'big').bit_length() }}",
        NUMBER,
        id="number-from-bytes",
    ),
    pytest.param(
        "{% set x = ('f' * 250000) | int(base=16) %}{% set y = ('e' * 125000) | int(base=16) %}"
        "{{ (x // y) % 10 }}",
        NUMBER,
        id="division-of-huge-numbers",
    ),
    # Few ticks per step, each step slow in C: stopped at the deadline, not ten steps later.
    pytest.param(
        BIG + "{% for i in range(100000) %}{% if s | max %}{% endif %}{% endfor %}",
        TIME,
        id="loop-of-slow-filters",
    ),
    pytest.param(
        "{% set s = '<a>' * 300000 %}{% for i in range(100000) %}{% if s | striptags %}"
        "{% endif %}{% endfor %}",
        TIME,
        id="loop-of-striptags",
    ),
    pytest.param(
        BIG + "{% macro m(n) %}{% if s | max %}{% endif %}{% if n %}{{ m(n - 1) }}{% endif %}"
        "{% endmacro %}{{ m(500) }}",
        TIME,
        id="macro-recursion-of-slow-filters",
    ),
]


@pytest.fixture
def owner(make_user):  # type: ignore[no-untyped-def]
    return make_user("user")


def _refused(session, owner, body: str, *, trace: bool) -> tuple[str, float, int]:  # type: ignore[no-untyped-def]
    """The one-line reason, the time it took and (with `trace`) the peak of allocations."""
    if trace:
        tracemalloc.start()
    began = time.thread_time()  # the budget's clock: the work, not the machine's load
    try:
        with pytest.raises(Invalid) as info:
            messages.add_message(session=session, actor=owner, subject="S", body=body)
        elapsed = time.thread_time() - began
        peak = tracemalloc.get_traced_memory()[1] if trace else 0
    finally:
        if trace:
            tracemalloc.stop()
    return str(info.value), elapsed, peak


@pytest.mark.parametrize(("body", "reason"), BOMBS)
def test_a_step_bomb_is_refused_at_the_deadline(session, owner, body, reason) -> None:
    text, elapsed, _ = _refused(session, owner, body, trace=False)
    assert text.startswith("body: ") and "\n" not in text
    assert reason in text, text
    # Before: 5.7 s for the slow-filter loop, 221 s for 30,000 characters of punycode. A
    # bound on runaway work (the budget and one slow step on a busy machine), not a target.
    assert elapsed < 3 * DEFAULT_LIMITS.seconds, f"{elapsed:.1f}s"
    if reason != TIME:  # refused before it was built (traced apart: tracing is slow)
        _, _, peak = _refused(session, owner, body, trace=True)
        assert peak < 100 * DEFAULT_LIMITS.output_bytes, f"{peak / 1e6:.0f} MB"


SLOW_STEPS = [
    pytest.param("{% for i in range(1000) %}{{ s | max }}{% endfor %}", id="filter"),
    pytest.param("{% for i in range(1000) %}{{ s.count('b') }}{% endfor %}", id="method"),
    pytest.param("{% for i in range(1000) %}{{ (s ~ 'b').find('ab') }}{% endfor %}", id="concat"),
    pytest.param("{% for i in range(1000) %}{{ ('%s' % s) | length }}{% endfor %}", id="operator"),
    pytest.param(
        "{% macro m() %}{{ s.rfind('b') }}{% endmacro %}{% for i in range(1000) %}{{ m() }}"
        "{% endfor %}",
        id="macro",
    ),
]


@pytest.mark.parametrize("template", SLOW_STEPS)
def test_a_render_past_its_deadline_runs_no_further_step(template: str) -> None:
    """Counted, not timed: with the deadline already gone, not one step's output comes out
    (the clock used to be read every 32 ticks: ten such steps ran past it)."""
    compiled = Sandbox().from_string(template)
    chunks = 0
    context = compiled.new_context({"s": "a" * 900_000})
    with (
        metered(DEFAULT_LIMITS, deadline=budget_now() - 1) as meter,
        pytest.raises(BudgetExceeded, match=TIME),
    ):
        for _ in compiled.root_render_func(context):
            chunks += 1
    assert chunks == 0, f"{chunks} steps ran after the deadline ({meter.ticks} ticks)"


def test_time_waiting_for_a_core_is_not_charged_to_the_template() -> None:
    """The budget counts the rendering thread's CPU: a render that is descheduled (a busy
    machine) for longer than its budget is not refused, one that computes for it is."""
    limits = RenderLimits(seconds=0.05)
    with metered(limits) as meter:
        time.sleep(0.2)  # off the CPU, as when other processes hold both cores
        meter.check_time()
    with metered(limits) as meter, pytest.raises(BudgetExceeded, match="longer than 0.05s"):
        while True:
            sum(range(10_000))
            meter.check_time()


ORDINARY = [
    ("{{ client.email.encode('utf-8') | length }}", "15"),
    ("{{ 'Привет'.encode('cp1251') | length }} {{ 'é'.encode('latin-1') }}", "6 b'\\xe9'"),
    ("{{ client.email.encode().decode('ascii') }}", "ann@example.com"),
    ("{% set n = 258 %}{{ n.to_bytes(2, 'big') }} {{ n.to_bytes(4, byteorder='little') }}", ""),
    ("{{ ('ff' | int(base=16)) * 2 }} {{ 2 ** 64 // 3 }} {{ (10 ** 30) % 7 }}", "510 "),
]


@pytest.mark.parametrize(("template", "starts"), ORDINARY)
def test_ordinary_uses_of_the_same_steps_still_work(template: str, starts: str) -> None:
    client = RenderClient("ann@example.com", "Ann Lee")
    with metered(DEFAULT_LIMITS) as meter:
        out = render_metered(Sandbox().from_string(template), meter, {"client": client})
    assert out.startswith(starts), out
