"""The render budget of [render] applies to every part of an HTML message: saved bodies are
checked as written and as composed, and each recipient's render is metered."""

from __future__ import annotations

import pytest

from mailctl.errors import Invalid
from mailctl.sending.budget import RenderLimits
from mailctl.sending.render import MessageContent, MessageRenderer, validate_content
from mailctl.sending.templates import RenderClient, RenderFailed

LIMITS = RenderLimits(seconds=0.5, output_bytes=100_000, message_bytes=1_000_000)
LOOP = (
    "{% for a in client.email * 1000 %}{% for b in client.email * 1000 %}x{% endfor %}{% endfor %}"
)


@pytest.mark.parametrize("fmt", ["markdown", "html"])
@pytest.mark.parametrize(
    ("body", "match"),
    [
        (LOOP, "takes longer than|more than 100,000 bytes"),
        ("{{ 'x' * 10**7 }}", "bytes"),
        ("{{ client.full_name * 600 }}", "bytes"),  # within budget only for short names
        ("{{ client.password }}", "unknown placeholder"),
        ("# Hi {{ client.email ", "template error at line 1"),
    ],
)
def test_html_bodies_over_budget_are_refused_when_saved(fmt: str, body: str, match: str) -> None:
    with pytest.raises(Invalid, match=match):
        validate_content(MessageContent(subject="S", body=body, format=fmt), limits=LIMITS)


def test_a_recipient_over_budget_fails_alone() -> None:
    renderer = MessageRenderer(
        MessageContent(subject="S", body="# {{ client.full_name * 100 }}", format="markdown"),
        from_address="a@example.org",
        from_name="A",
        limits=LIMITS,
    )
    assert renderer.render(RenderClient("a@example.com", "Ann")).html
    with pytest.raises(RenderFailed, match="max_output_bytes"):
        renderer.render(RenderClient("b@example.com", "B" * 2000))


def test_personalisation_is_escaped_in_html_only() -> None:
    renderer = MessageRenderer(
        MessageContent(
            subject="Hi {{ client.full_name }}",
            body="**{{ client.full_name }}**",
            format="markdown",
        ),
        from_address="a@example.org",
        from_name="A & B <News>",
    )
    rendered = renderer.render(RenderClient("a@example.com", 'Tom & "Jerry" <x>'))
    assert rendered.subject == 'Hi Tom & "Jerry" <x>'
    assert 'Tom & "Jerry" <x>' in rendered.body
    assert "<strong>Tom &amp; &#34;Jerry&#34; &lt;x&gt;</strong>" in (rendered.html or "")
    assert "A &amp; B &lt;News&gt;" in (rendered.html or "")
