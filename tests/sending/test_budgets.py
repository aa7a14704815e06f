"""Template bombs: each is refused within the render budget, in time and in memory.

The budget lives in the sandbox itself (sending/sandbox.py), so the service that saves a
message, the preview and every send share it. Every bomb below gets a one-line reason from
`add_message`; the bound on its time (ten budgets) and on its peak memory (tracemalloc)
says it was stopped, not merely that it failed eventually.
"""

from __future__ import annotations

import time
import tracemalloc
from typing import Any

import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

from mailctl.errors import Invalid
from mailctl.sending.render import MessageContent, MessageRenderer
from mailctl.sending.sandbox import DEFAULT_LIMITS, RenderLimits, Sandbox, metered, render_metered
from mailctl.sending.templates import RenderClient, RenderFailed
from mailctl.services import messages

E = "client.email"
TIME = "takes longer than 1s to render"
VALUE = "builds a value of more than 1,000,000 bytes"
OUTPUT = "renders to more than 1,000,000 bytes"
WORK = "bytes on the way"
DEEP = "nested too deeply"

BOMBS = [
    # The review's example: its repetition alone is over the cap.
    pytest.param(
        f"{{% for a in {E} * 100000 %}}{{% for b in {E} * 100000 %}}x{{% endfor %}}{{% endfor %}}",
        VALUE,
        id="review-example",
    ),
    # Nested loops of an allowed size: stopped by the clock, or by the bytes the empty
    # iterations add up to, whichever comes first (it depends on the machine's speed).
    pytest.param(
        f"{{% for a in {E} * 3000 %}}{{% for b in {E} * 3000 %}}{{% endfor %}}{{% endfor %}}",
        (TIME, WORK),
        id="nested-loops",
    ),
    pytest.param(
        "{% for i in range(100000) %}{% for j in range(100000) if j < 0 %}{% endfor %}{% endfor %}",
        TIME,
        id="loop-whose-if-skips-everything",
    ),
    pytest.param(
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        TIME,
        id="nested-ranges",
    ),
    pytest.param("{% for i in range(100000000) %}{% endfor %}", "Range too big", id="huge-range"),
    # Repetition: chained, nested through variables, of lists, and by concatenation.
    pytest.param(f"{{{{ ({E} * 50000) * 50000 }}}}", VALUE, id="chained-repetition"),
    pytest.param(f"{{{{ {E} * 10 * 10 * 10 * 10 * 10 * 10 }}}}", VALUE, id="repetition-chain"),
    pytest.param(
        f"{{% set a = {E} * 1000 %}}{{% set b = a * 1000 %}}{{{{ b * 1000 }}}}",
        VALUE,
        id="nested-repetition",
    ),
    pytest.param(f"{{{{ [{E} * 10000] * 100000 }}}}", VALUE, id="list-repetition"),
    pytest.param(
        f"{{% set b = {E} * 40000 %}}{{{{ [b, b, b, b, b, b, b, b, b, b] }}}}",
        VALUE,
        id="list-of-references-printed",
    ),
    pytest.param("{{ ('x' * 900000) + ('y' * 900000) }}", VALUE, id="plus"),
    pytest.param("{% set a = 'x' * 600000 %}{{ a ~ a }}", VALUE, id="tilde"),
    pytest.param(
        f"{{% set ns = namespace(x={E}) %}}{{% for i in range(40) %}}"
        "{% set ns.x = ns.x ~ ns.x %}{% endfor %}{{ ns.x }}",
        VALUE,
        id="doubling-in-a-namespace",
    ),
    pytest.param(
        "{% set n = 10 ** 3000 %}{{ n * n * n * n * n * n * n * n * n * n * n * n }}",
        "number of more than",
        id="big-int-product",
    ),
    pytest.param("{{ 10 ** 100000000 }}", "number of more than", id="power"),
    # Recursion through macros and call blocks.
    pytest.param(
        "{% macro m(n) %}{% if n %}{{ m(n - 1) }}{{ m(n - 1) }}{% endif %}{% endmacro %}"
        "{{ m(60) }}",
        TIME,
        id="macro-fork",
    ),
    pytest.param(
        "{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(0) }}",
        "recurses too deeply",
        id="macro-recursion",
    ),
    pytest.param(
        "{% macro m() %}{% for x in range(100000) %}{{ caller() }}{% endfor %}{% endmacro %}"
        f"{{% call m() %}}{{{{ {E} * 1000 }}}}{{% endcall %}}",
        WORK,
        id="call-block-into-a-buffer",
    ),
    pytest.param(
        "{% macro m() %}{% for x in range(100000) %}" + "z" * 200 + "{% endfor %}{% endmacro %}"
        "{{ m() | length }}",
        WORK,
        id="constant-text-into-a-buffer",
    ),
    pytest.param(
        "{% set x %}{% for i in range(100000) %}" + "z" * 200 + "{% endfor %}{% endset %}",
        WORK,
        id="set-block",
    ),
    # Deep nesting: refused when parsed or compiled.
    pytest.param("{{ " + "(" * 400 + "1" + ")" * 400 + " }}", DEEP, id="deep-parentheses"),
    pytest.param("{% if 1 %}" * 150 + "x" + "{% endif %}" * 150, DEEP, id="deep-ifs"),
    pytest.param("{% for a in 'ab' %}" * 30 + "x" + "{% endfor %}" * 30, DEEP, id="deep-loops"),
    # Filters and methods that multiply their input.
    pytest.param(f"{{{{ {E} | center(1000000000) }}}}", VALUE, id="center-filter"),
    pytest.param(f"{{{{ {E}.center(1000000000) }}}}", VALUE, id="center-method"),
    pytest.param(f"{{{{ {E}.ljust(1000000000, '*') }}}}", VALUE, id="ljust"),
    pytest.param(f"{{{{ {E}.zfill(1000000000) }}}}", VALUE, id="zfill"),
    pytest.param("{{ ('\\t' * 1000).expandtabs(1000000) }}", VALUE, id="expandtabs"),
    pytest.param(f"{{{{ {E} | indent(1000000000) }}}}", VALUE, id="indent"),
    pytest.param(
        f"{{{{ ({E} * 1000) | replace('', {E} * 1000) }}}}", VALUE, id="replace-empty-filter"
    ),
    pytest.param(f"{{{{ ({E} * 1000).replace('e', {E} * 1000) }}}}", VALUE, id="replace-method"),
    pytest.param(f"{{{{ {E}.translate({{101: {E} * 50000}}) }}}}", VALUE, id="translate"),
    pytest.param(f"{{{{ range(100000) | join({E} * 1000) }}}}", VALUE, id="join-filter"),
    pytest.param(
        f"{{{{ ({E} * 1000).join(range(1000) | map('string')) }}}}", VALUE, id="join-method"
    ),
    pytest.param(f'{{{{ "{{:>1000000000}}".format({E}) }}}}', VALUE, id="format-width"),
    pytest.param(f'{{{{ "{{0:{{1}}}}".format({E}, 1000000000) }}}}', VALUE, id="format-nested"),
    pytest.param(
        f'{{{{ "{{0}}{{0}}{{0}}{{0}}{{0}}{{0}}{{0}}{{0}}{{0}}{{0}}".format({E} * 50000) }}}}',
        WORK,
        id="format-repeated-field",
    ),
    pytest.param(f'{{{{ "%1000000000s" % {E} }}}}', VALUE, id="printf-width"),
    pytest.param(f'{{{{ "%*s" % (1000000000, {E}) }}}}', VALUE, id="printf-star"),
    pytest.param('{{ "%.1000000000f" % 1.5 }}', VALUE, id="printf-precision"),
    pytest.param(f'{{{{ "%1000000000s" | format({E}) }}}}', VALUE, id="format-filter"),
    pytest.param("{{ [1] | batch(1000000000, 0) | list }}", VALUE, id="batch-fill"),
    pytest.param(
        f"{{{{ {E} | wordwrap(1, wrapstring={E} * 10000) }}}}", VALUE, id="wordwrap-wrapstring"
    ),
    pytest.param(f"{{{{ ({E} * 40000) | wordwrap(1) }}}}", VALUE, id="wordwrap-width"),
    pytest.param(f"{{{{ ({E} * 20000) | urlize }}}}", VALUE, id="urlize"),
    pytest.param("{{ ('ab ' * 100000) | title }}", VALUE, id="title"),
    pytest.param("{{ ('a' * 500000) | list | join }}", VALUE, id="list-of-characters"),
    pytest.param("{{ ('a,' * 400000).split(',') }}", VALUE, id="split"),
    pytest.param("{{ range(1000) | list | tojson(indent=100000) }}", VALUE, id="tojson-indent"),
    pytest.param("{{ ([[1] * 100000] * 100) | sum(start=[]) }}", VALUE, id="sum-of-lists"),
    pytest.param("{{ lipsum(100000000) }}", VALUE, id="lipsum"),
    # The output itself.
    pytest.param(
        "{% for i in range(100000) %}" + "x" * 100 + "{% endfor %}", OUTPUT, id="long-output"
    ),
    pytest.param(
        "{% for i in range(2) %}" + "{{ client.email }}" * 2000 + "{% endfor %}" * 1,
        OUTPUT,
        id="many-placeholders",
    ),
    # Compiling is not interruptible: a template of too many parts is refused before it.
    pytest.param("{{ client.email }}" * 11000, "too complex", id="too-many-placeholders"),
    pytest.param("{{ [" + "1, " * 50000 + "1] }}", "too complex", id="huge-list-literal"),
]


def _refused(
    session: Any, owner: Any, body: str, *, trace: bool = False, **limits: Any
) -> tuple[str, float, int]:
    """The one-line reason, the time it took and (with `trace`) the peak of allocated memory."""
    if trace:
        tracemalloc.start()
    began = time.thread_time()
    try:
        with pytest.raises(Invalid) as info:
            messages.add_message(
                session=session,
                actor=owner,
                subject="Budget",
                body=body,
                limits=RenderLimits(**limits),
            )
        elapsed = time.thread_time() - began
        peak = tracemalloc.get_traced_memory()[1] if trace else 0
    finally:
        if trace:
            tracemalloc.stop()
    return str(info.value), elapsed, peak


@pytest.fixture
def owner(make_user):  # type: ignore[no-untyped-def]
    return make_user("user")


@pytest.mark.parametrize(("body", "reason"), BOMBS)
def test_a_template_bomb_is_refused_within_the_budget(session, owner, body, reason) -> None:
    # The budget is wall-clock time: on a busy machine the clock could stop a case that is
    # about another budget first (a second of CPU spread over five). Those get a slack clock.
    reasons = reason if isinstance(reason, tuple) else (reason,)
    slack = {} if TIME in reasons else {"seconds": 600.0}
    message, elapsed, _ = _refused(session, owner, body, **slack)
    assert message.startswith("body: ") and "\n" not in message
    assert any(r in message for r in reasons), message
    # Bounds on runaway work (ten budgets, a hundred times the part cap), not speed targets.
    assert elapsed < 10 * DEFAULT_LIMITS.seconds, f"{elapsed:.1f}s"
    if reason in (VALUE, OUTPUT, WORK):
        # Refused before it was built: memory stays within a small multiple of the cap
        # (traced apart: tracing slows everything down).
        _, _, peak = _refused(session, owner, body, trace=True, **slack)
        assert peak < 100 * DEFAULT_LIMITS.output_bytes, f"{peak / 1e6:.0f} MB"


def test_a_subject_bomb_is_refused_too(session, owner) -> None:
    with pytest.raises(Invalid, match="subject: .*takes longer than") as info:
        messages.add_message(
            session=session,
            actor=owner,
            subject="{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}"
            "{% endfor %}",
            body="Hello",
        )
    assert "\n" not in str(info.value)


def test_subject_and_body_share_one_time_budget(session, owner) -> None:
    """Saving answers within one budget, however many parts and sample clients it renders."""
    slow = "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"
    began = time.thread_time()
    with pytest.raises(Invalid):
        messages.add_message(
            session=session,
            actor=owner,
            subject="Hi",
            body=slow,
            limits=RenderLimits(seconds=0.5),
        )
    assert time.thread_time() - began < 0.5 + 1.5


def test_smaller_budgets_from_the_settings_apply(session, owner) -> None:
    body = "{% for i in range(300) %}0123456789{% endfor %}"  # 3,000 characters
    messages.add_message(session=session, actor=owner, subject="S", body=body)
    text, _, _ = _refused(session, owner, body, output_bytes=2000)
    assert "renders to more than 2,000 bytes" in text


def test_a_template_within_budget_for_a_sample_but_not_the_largest_client(session, owner) -> None:
    # 13 characters of sample name x 20,000 is 260 kB; 200 characters x 20,000 is 4 MB.
    text, _, _ = _refused(session, owner, "{{ client.full_name * 20000 }}")
    assert VALUE in text and "for a client with the longest name and address" in text


# -- ordinary templates still work, and render exactly as Jinja renders them ----------------

ORDINARY = [
    "Hello {{ client.first_name | upper }}!",
    "{% for c in client.full_name %}{{ loop.index }}{{ c }}{% if not loop.last %},{% endif %}"
    "{% endfor %}",
    "{% for c in 'abc' %}{{ loop.length }}{{ loop.revindex }}{% endfor %}",
    "{% for c in 'abc' if c != 'b' %}{{ c }}{% else %}none{% endfor %}",
    "{% for c in [] %}{{ c }}{% else %}empty{% endfor %}",
    "{% for item in [[1, [2, 3]], 4] recursive %}{% if item is iterable %}"
    "({{ loop(item) }}){% else %}{{ item }}{% endif %}{% endfor %}",
    "{% macro box(x, width=10) %}[{{ x | center(width) }}]{% endmacro %}{{ box('hi') }}",
    "{% macro wrap() %}<{{ caller() }}>{% endmacro %}{% call wrap() %}{{ client.email }}"
    "{% endcall %}",
    "{{ [1, 2, 3] | join(', ') }} {{ [1, 2, 3] | map('string') | join('-') }}",
    "{{ [client, client] | join(', ', attribute='email') }}",
    "{{ [1, 2, 3] | sum }} {{ [[1], [2]] | sum(start=[]) }} {{ range(5) | list }}",
    "{{ '%s is %d' % (client.first_name, 3) }} {{ '%(a)s' % {'a': 1} }} {{ '%5.1f' % 2.25 }}",
    "{{ '{} and {:>6}'.format(client.first_name, 'x') }} {{ '{a}'.format_map({'a': 2}) }}",
    "{{ client.email ~ ' / ' ~ client.full_name }} {{ 'ab' * 3 }} {{ 2 ** 10 }} {{ 7 // 2 }}",
    "{{ 'a-b'.replace('-', '+') }} {{ 'x'.zfill(4) }} {{ 'a\tb'.expandtabs(4) }}",
    "{{ 'one two three' | wordwrap(5) }} {{ 'hi there' | title }} {{ 'x' | indent(2, true) }}",
    "{{ '<b>bold</b> &amp; <!-- c -->text' | striptags }}",
    "{{ 'see www.example.com' | urlize }} {{ [3, 1, 2] | sort | first }} {{ 'abc' | reverse }}",
    "{% set ns = namespace(n=0) %}{% for i in range(4) %}{% set ns.n = ns.n + i %}{% endfor %}"
    "{{ ns.n }}",
    "{% set x %}block {{ client.first_name }}{% endset %}{{ x }}",
    "{% filter upper %}shout {{ client.first_name }}{% endfilter %}",
    "{{ lipsum(1, false, 5, 6) | length > 0 }} {{ {'b': 1, 'a': 2} | dictsort }}",
    "{{ [1, 2, 3, 4] | batch(3, 0) | list }} {{ [1, 2, 3, 4] | slice(2) | list }}",
    "{{ range(3) | list | tojson }} {{ 'x' | pprint }} {{ [1, 1, 2] | unique | list }}",
]


@pytest.mark.parametrize("template", ORDINARY)
def test_ordinary_templates_render_as_jinja_renders_them(template: str) -> None:
    client = RenderClient("ann@example.com", "Ann Lee")
    stock = ImmutableSandboxedEnvironment(keep_trailing_newline=True)
    expected = stock.from_string(template).render(client=client, unsubscribe_url="u")
    with metered(DEFAULT_LIMITS) as meter:
        got = render_metered(
            Sandbox().from_string(template), meter, {"client": client, "unsubscribe_url": "u"}
        )
    if "lipsum" in template:
        assert got.split()[0] == expected.split()[0] == "True"
    else:
        assert got == expected


@pytest.mark.parametrize("template", ORDINARY)
def test_ordinary_templates_are_accepted(session, owner, template: str) -> None:
    messages.add_message(session=session, actor=owner, subject="S", body=template)


def test_a_plain_render_outside_a_budget_is_budgeted_too() -> None:
    template = Sandbox().from_string(
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"
    )
    began = time.thread_time()
    with pytest.raises(Exception, match="takes longer than"):
        template.render()
    assert time.thread_time() - began < 10


# -- at send time: one recipient fails, with the reason; the run goes on -------------------


def test_a_render_over_budget_fails_that_recipient_only() -> None:
    renderer = MessageRenderer(
        MessageContent(
            subject="Hi {{ client.first_name }}",
            body="{% if client.full_name == 'Bomb' %}{{ 'x' * 2000000 }}{% endif %}Hello",
        ),
        from_address="news@example.org",
        from_name="News",
    )
    assert b"Hello" in renderer.render(RenderClient("ann@example.com", "Ann")).data
    with pytest.raises(RenderFailed, match=VALUE):
        renderer.render(RenderClient("bomb@example.com", "Bomb"))
    assert b"Hello" in renderer.render(RenderClient("bob@example.com", "Bob")).data


def test_the_whole_message_is_capped() -> None:
    limits = RenderLimits(output_bytes=1_000_000, message_bytes=5000)
    renderer = MessageRenderer(
        MessageContent(subject="S", body="y" * 6000),
        from_address="a@example.org",
        from_name="",
        limits=limits,
    )
    with pytest.raises(RenderFailed, match="the message is [0-9,]+ bytes, more than 5,000"):
        renderer.render(RenderClient("ann@example.com", "Ann"))
