"""What the render budget costs: the metered sandbox against Jinja's own, same run.

    python bench/bench_render.py [--renders 20000]

For templates that go through Jinja (filters, loops, macros, formatting), the time of one
render in mailctl's metered sandbox (sending/sandbox.py) and in a stock
ImmutableSandboxedEnvironment, and their ratio; then a whole message (MessageRenderer, the
fast path of plain placeholders, as the delivery benchmark sends it), and saving a message
(rendered for the sample and the largest client). Target: metered / stock <= 3 for templates
with loops and filters; the fast path unchanged (no Jinja, no meter).
"""

from __future__ import annotations

import argparse
import time

from jinja2.sandbox import ImmutableSandboxedEnvironment

from mailctl.sending.budget import DEFAULT_LIMITS, metered
from mailctl.sending.render import MessageContent, MessageRenderer
from mailctl.sending.sandbox import Sandbox, render_metered
from mailctl.sending.templates import RenderClient, validate_message

CLIENT = RenderClient("ann.lee@example.com", "Ann Lee")
TEMPLATES = {
    "filters": "Hello {{ client.first_name | upper }}, news for {{ client.email | lower }}"
    " ({{ client.full_name | length }} letters, {{ '%s!' % client.first_name }})",
    "loop of 20": "{% for i in range(20) %}{{ loop.index }}. {{ client.first_name }}\n{% endfor %}",
    "macro x 10": "{% macro line(x) %}[{{ x | center(12) }}]{% endmacro %}"
    "{% for i in range(10) %}{{ line(client.first_name) }}{% endfor %}",
    "format + join": "{{ '{} <{}>'.format(client.full_name, client.email) }} "
    "{{ [client.first_name, client.email, 'x'] | join(', ') }}",
}
BODY = (
    "Hello {{ client.first_name }},\n\n"
    + "This month we have news for you, {{ client.email }}. " * 8
    + "\n\nRegards,\nthe team\n"
)


def per_render(fn, n: int) -> float:  # type: ignore[no-untyped-def]
    fn()  # warm
    best = float("inf")
    for _ in range(3):  # best of three: the machine is shared
        began = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - began) / n)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--renders", type=int, default=20000)
    n = parser.parse_args().renders
    stock_env = ImmutableSandboxedEnvironment(keep_trailing_newline=True)
    ours = Sandbox()
    print(f"{'template':<16} {'stock us':>9} {'metered us':>11} {'ratio':>6}")
    for name, text in TEMPLATES.items():
        stock = stock_env.from_string(text)
        mine = ours.from_string(text)
        variables = {"client": CLIENT, "unsubscribe_url": "https://u/1"}
        assert stock.render(**variables) == mine.render(**variables), name

        def metered_render() -> None:
            with metered(DEFAULT_LIMITS) as meter:
                render_metered(mine, meter, variables)  # noqa: B023

        base = per_render(lambda: stock.render(**variables), n)  # noqa: B023
        cost = per_render(metered_render, n)
        print(f"{name:<16} {base * 1e6:>9.1f} {cost * 1e6:>11.1f} {cost / base:>6.2f}")

    renderer = MessageRenderer(
        MessageContent(subject="News for {{ client.full_name }}", body=BODY),
        from_address="news@example.org",
        from_name="News",
        unsubscribe=True,
    )
    whole = per_render(lambda: renderer.render(CLIENT, unsubscribe_url="https://u/1"), n)
    print(f"whole message, plain placeholders (fast path): {whole * 1e6:.1f} us")
    save = per_render(lambda: validate_message("News for {{ client.first_name }}", BODY), 200)
    print(f"saving a message (two sample clients, both parts): {save * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
