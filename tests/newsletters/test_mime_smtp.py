"""What a real SMTP server (aiosmtpd on 127.0.0.1) receives for Markdown, HTML and text
messages, parsed with Python's `email` package."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage

from sqlmodel import select

from mailctl.db import session_scope
from mailctl.models import Delivery, User
from mailctl.schedule import Clock
from mailctl.services import delivery, layouts
from mailctl.services.previews import view_in_browser
from tests.support.smtp import Sink

CLIENTS = [("ann@example.com", "Ann <b>Lee</b>"), ("jose@example.com", "José Müller")]
SUBJECT = "News for {{ client.first_name }}"
MARKDOWN = (
    "# Hello {{ client.full_name }}\n\n"
    "Read [our June post](https://example.com/june?a=1&b=2) and **more**.\n\n"
    "- one\n- two\n"
)
HTML = (
    '<h1 class="big">Hi {{ client.first_name }}</h1>'
    '<p>See <a href="https://example.com/shop">the shop</a>.</p>'
    "<style>h1.big { color: #123456; }</style>"
)


def _send(engine, settings) -> None:  # type: ignore[no-untyped-def]
    delivery.run_pass(
        engine=engine, settings=settings, clock=Clock.from_settings(settings), worker="test"
    )


def _parsed(sink: Sink) -> dict[str, EmailMessage]:
    return {
        e.rcpt_tos[0]: email.message_from_bytes(e.content, policy=email.policy.default)  # type: ignore[misc]
        for e in sink.handler.envelopes
    }


def test_markdown_goes_out_as_multipart_alternative_text_first(
    engine, sink: Sink, smtp_settings, make_mailing
) -> None:
    settings = smtp_settings(sink.port, delivery_postal_address="1 Main St, Springfield")
    make_mailing(CLIENTS, subject=SUBJECT, body=MARKDOWN, format="markdown")
    _send(engine, settings)
    got = _parsed(sink)
    assert sorted(got) == sorted(a for a, _ in CLIENTS)
    for address, name in CLIENTS:
        msg = got[address]
        assert msg.get_content_type() == "multipart/alternative"
        parts = list(msg.iter_parts())
        assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
        assert all(p.get_content_charset() == "utf-8" for p in parts)
        text, html = (p.get_content() for p in parts)
        first = name.split()[0]
        assert str(msg["Subject"]) == f"News for {first}"
        # Both parts personalised; the HTML escapes what the client's name holds.
        assert f"Hello {name}" in text
        escaped = name.replace("<", "&lt;").replace(">", "&gt;")
        assert f"Hello {escaped}</h1>" in html and "<b>Lee</b>" not in html
        # Markdown rendered, CSS of the layout inlined into style attributes.
        assert "<strong>more</strong>" in html and "<li>one</li>" in html
        assert re.search(r'<td class="content" style="[^"]*font-size: 16px', html)
        assert re.search(r'<a href="https://example.com/june\?a=1&amp;b=2" style="', html)
        # Links readable in the text part.
        assert "[our June post](https://example.com/june?a=1&b=2)" in text
        # The unsubscribe link: in both parts and in the headers; the footer's lines too.
        unsubscribe = msg["List-Unsubscribe"].strip("<>")
        assert unsubscribe.startswith("https://mail.example.org/unsubscribe/")
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert unsubscribe in text and f'href="{unsubscribe}"' in html
        assert "Example News" in text and "1 Main St, Springfield" in html
        view = re.search(r"https://mail.example.org/view/[\w.-]+", text)
        assert view and f'href="{view.group(0)}"' in html


def test_the_view_link_opens_the_message_as_that_recipient_got_it(
    engine, sink: Sink, smtp_settings, make_mailing
) -> None:
    settings = smtp_settings(sink.port)
    make_mailing(CLIENTS, subject=SUBJECT, body=MARKDOWN, format="markdown")
    _send(engine, settings)
    msg = _parsed(sink)["jose@example.com"]
    token = re.search(r"/view/([\w.-]+)", msg.get_body(("plain",)).get_content()).group(1)
    with session_scope(engine, readonly=True) as session:
        rendered = view_in_browser(session=session, settings=settings, token=token)
    assert "Hello José Müller</h1>" in (rendered.html or "")


def test_html_messages_keep_their_markup_and_get_a_text_part(
    engine, sink: Sink, smtp_settings, make_mailing
) -> None:
    settings = smtp_settings(sink.port)
    make_mailing(CLIENTS[:1], subject="S", body=HTML, format="html")
    _send(engine, settings)
    msg = _parsed(sink)["ann@example.com"]
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    # The message's own <style> is inlined too (mail clients drop <style> blocks).
    assert re.search(r"<h1 class=\"big\" style=\"[^\"]*color: #123456;?\">Hi Ann</h1>", html)
    assert "Hi Ann" in text and "[the shop](https://example.com/shop)" in text
    assert "<h1" not in text and "<style" not in text


def test_a_custom_layout_is_used(engine, sink: Sink, smtp_settings, make_mailing, owner) -> None:
    settings = smtp_settings(sink.port)
    with session_scope(engine) as session:
        actor = session.get(User, owner.id)
        layout = layouts.add_layout(
            session=session,
            actor=actor,
            name="Brand",
            html=(
                '<style>.brand { color: #ff0000; }</style><div class="brand">ACME</div>'
                '{{ content }}<p><a href="{{ unsubscribe_url }}">Leave the list</a></p>'
            ),
        )
        layout_id = layout.id
    make_mailing(
        CLIENTS[:1], subject="S", body="Hello *you*", format="markdown", layout_id=layout_id
    )
    _send(engine, settings)
    msg = _parsed(sink)["ann@example.com"]
    html = msg.get_body(("html",)).get_content()
    assert re.search(r'<div class="brand" style="color: #ff0000;?">ACME</div>', html)
    assert "<em>you</em>" in html and "Leave the list" in html
    assert "ACME" in msg.get_body(("plain",)).get_content()


def test_text_messages_stay_single_part(engine, sink: Sink, smtp_settings, make_mailing) -> None:
    settings = smtp_settings(sink.port)
    make_mailing(CLIENTS[:1], subject="S", body="Plain {{ client.email }}", format="text")
    _send(engine, settings)
    msg = _parsed(sink)["ann@example.com"]
    assert msg.get_content_type() == "text/plain" and not msg.is_multipart()
    assert msg.get_content().strip() == "Plain ann@example.com"
    with session_scope(engine, readonly=True) as session:
        assert [d.state for d in session.exec(select(Delivery))] == ["sent"]
