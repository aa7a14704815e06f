"""A message for one client: its content's templates, rendered within the render budget, as
MIME bytes.

The renderer knows what a message is made of through `MessageContent`; the engine only hands
it a content value and a client. A text message is one text/plain part; a Markdown or HTML
one is composed once (compose.py: Markdown, layout, CSS inlined, text alternative) and sent
as multipart/alternative. Per recipient only the templates are rendered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from jinja2 import TemplateSyntaxError

from mailctl.models import Layout, Message
from mailctl.models.message import BodyFormat
from mailctl.sending.budget import DEFAULT_LIMITS, RenderLimits, metered
from mailctl.sending.budget import now as budget_now
from mailctl.sending.compose import Composed, compose
from mailctl.sending.mime import EncodedText, MimeBuilder, check_header, encode_text
from mailctl.sending.templates import (
    SAMPLE_VALUES,
    SUBJECT_MAX,
    Part,
    RenderClient,
    RenderFailed,
    compile_template,
    long_subject,
    render_failure,
    validate_template,
)


@dataclass(frozen=True)
class MessageContent:
    """What a message says, as the renderer takes it: `layout` is the HTML of its layout
    (None: the default one), unused for text."""

    subject: str
    body: str
    format: str = BodyFormat.text.value
    layout: str | None = None

    @classmethod
    def of(cls, message: Message, layout: Layout | None = None) -> MessageContent:
        return cls(
            subject=message.subject,
            body=message.body,
            format=message.format,
            layout=layout.html if layout is not None else None,
        )

    @property
    def is_html(self) -> bool:
        return self.format != BodyFormat.text

    def composed(self) -> Composed | None:
        return compose(self.body, self.format, self.layout) if self.is_html else None


def validate_content(
    content: MessageContent, *, limits: RenderLimits = DEFAULT_LIMITS, postal_address: str = ""
) -> None:
    """Every part of a message (subject, text, HTML) rendered for sample clients within one
    time budget: Invalid, in one line, when one would fail or run away at send time."""
    # Composed first: Markdown and CSS inlining take time bounded by the body's size, and
    # are not the template's; the budget is for rendering the templates.
    composed = content.composed()
    deadline = budget_now() + limits.seconds
    values = {**SAMPLE_VALUES, "postal_address": postal_address or SAMPLE_VALUES["postal_address"]}
    validate_template(content.subject, field="subject", limits=limits, deadline=deadline)
    # The body as written first: its errors name its own lines, not the composed document's.
    validate_template(
        content.body, field="body", limits=limits, deadline=deadline, html=content.is_html
    )
    if composed is None:
        return
    # Errors name the body: the layout's own placeholders were checked when it was saved.
    for source, html in ((composed.text, False), (composed.html, True)):
        validate_template(
            source, field="body", limits=limits, deadline=deadline, html=html, values=values
        )


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str  # the text part
    data: bytes
    html: str | None = None


_BLANK_LINES = re.compile(r"\n{3,}")


class MessageTooLarge(RenderFailed):
    pass


def check_message_size(data: bytes, limits: RenderLimits) -> None:
    """The whole message against render.max_message_bytes, before any byte goes out."""
    if len(data) > limits.message_bytes:
        raise MessageTooLarge(
            f"the message is {len(data):,} bytes, more than {limits.message_bytes:,}"
            " (render.max_message_bytes)"
        )


class MessageRenderer:
    """Compiled once per message, renders one client at a time.

    Every failure to build a message (a template error, a budget exceeded, a header that
    would break) is a RenderFailed or HeaderInjection with a one-line reason.
    """

    def __init__(
        self,
        content: MessageContent,
        *,
        from_address: str,
        from_name: str,
        unsubscribe: bool = False,
        limits: RenderLimits = DEFAULT_LIMITS,
        postal_address: str = "",
    ) -> None:
        self._limits = limits
        try:
            # Markdown, the layout and CSS inlining: here, once per message, never per client.
            composed = content.composed()
            self._subject, subject_jinja = compile_template(content.subject, limits)
            self._body, body_jinja = compile_template(
                composed.text if composed else content.body, limits
            )
            self._html: Part | None = None
            html_jinja = False
            if composed is not None:
                self._html, html_jinja = compile_template(composed.html, limits, html=True)
        except TemplateSyntaxError as exc:
            raise RenderFailed(f"template error at line {exc.lineno}: {exc.message}") from None
        except (RecursionError, SyntaxError, MemoryError):
            raise RenderFailed("the template is nested too deeply") from None
        self._needs_meter = subject_jinja or body_jinja or html_jinja
        self._mime = MimeBuilder(from_address=from_address, from_name=from_name)
        self._unsubscribe = unsubscribe
        self._values = {**SAMPLE_VALUES, "sender_name": from_name, "postal_address": postal_address}

    def _parts(self, client: RenderClient, values: dict[str, str]) -> tuple[str, str, str | None]:
        html = self._html
        if not self._needs_meter:
            return (
                self._subject(client, values, None),
                self._body(client, values, None),
                html(client, values, None) if html else None,
            )
        # One meter for the whole message: its parts share the time budget.
        with metered(self._limits) as current:
            return (
                self._subject(client, values, current),
                self._body(client, values, current),
                html(client, values, current) if html else None,
            )

    def _encode(self, text: str, what: str) -> EncodedText:
        encoded = encode_text(text)
        cap = self._limits.output_bytes
        if encoded.size > cap:
            raise RenderFailed(
                f"the {what} renders to {encoded.size:,} bytes, more than {cap:,}"
                " (render.max_output_bytes)"
            )
        return encoded

    def render(
        self,
        client: RenderClient,
        *,
        unsubscribe_url: str = "",
        web_url: str = "",
        to_address: str | None = None,
    ) -> Rendered:
        """The message for `client`, addressed to them (or to `to_address`: a test send)."""
        # The recipient address and the subject are checked for line breaks by the builder.
        values = {**self._values, "unsubscribe_url": unsubscribe_url, "web_url": web_url}
        try:
            subject, body, html = self._parts(client, values)
        except Exception as exc:  # whatever a template raises, one line for this client
            raise RenderFailed(render_failure(exc)) from None
        if len(subject) > SUBJECT_MAX:
            raise RenderFailed(long_subject(len(subject)))
        if html is not None and "\n\n\n" in body:
            # An empty footer line (no postal address set) leaves a run of blank lines.
            body = _BLANK_LINES.sub("\n\n", body)
        encoded = self._encode(body, "body")
        encoded_html = self._encode(html, "HTML part") if html is not None else None
        headers: tuple[bytes, ...] = ()
        if self._unsubscribe and unsubscribe_url:
            check_header(unsubscribe_url, "the unsubscribe link")
            headers = (
                f"List-Unsubscribe: <{unsubscribe_url}>".encode(),
                b"List-Unsubscribe-Post: List-Unsubscribe=One-Click",
            )
        data = self._mime.build(
            to_name=client.full_name if to_address is None else "",
            to_address=client.email if to_address is None else to_address,
            subject=subject,
            body=encoded,
            headers=headers,
            html=encoded_html,
        )
        check_message_size(data, self._limits)
        return Rendered(subject=subject, body=body, data=data, html=html)


# An address no real link has: the layout check looks for it in an <a href>.
_PROBE = "https://unsubscribe.invalid/probe"
_SAMPLE_BODY = "# Sample\n\nA sample paragraph with [a link](https://example.com/)."


def validate_layout(html: str, *, limits: RenderLimits = DEFAULT_LIMITS) -> None:
    """A layout must hold the message (`{{ content }}`, once) and an unsubscribe link (an
    `<a href="{{ unsubscribe_url }}">`), and render within the budget for sample clients."""
    from html.parser import HTMLParser

    from mailctl.sending.compose import CONTENT

    found = len(CONTENT.findall(html))
    if found != 1:
        raise RenderFailed(
            "a layout needs {{ content }} exactly once, where the message goes"
            f" (it has it {found} times)"
        )
    content = MessageContent(subject="Sample", body=_SAMPLE_BODY, format="markdown", layout=html)
    try:
        validate_content(content, limits=limits)
    except RenderFailed:
        raise
    except Exception as exc:  # Invalid from the body's checks: here it is the layout's fault
        raise RenderFailed(str(exc).replace("body:", "layout:", 1)) from None
    rendered = MessageRenderer(
        content, from_address="probe@example.com", from_name="Probe", limits=limits
    ).render(RenderClient("probe@example.com", "Probe"), unsubscribe_url=_PROBE)
    hrefs: list[str] = []

    class Links(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag == "a":
                hrefs.extend(value or "" for name, value in attrs if name == "href")

    Links().feed(rendered.html or "")
    if _PROBE not in hrefs:
        raise RenderFailed(
            'a layout needs an unsubscribe link: <a href="{{ unsubscribe_url }}">Unsubscribe</a>'
        )
