"""A message for one client: its content's templates, rendered within the render budget, as
MIME bytes.

The renderer knows what a message is made of through `MessageContent`; the engine only hands
it a content value and a client. A new kind of content (HTML, Markdown) is a field there and a
part here, never a column in the engine.
"""

from __future__ import annotations

from dataclasses import dataclass

from jinja2 import TemplateSyntaxError

from mailctl.models import Message
from mailctl.sending.budget import DEFAULT_LIMITS, RenderLimits, metered
from mailctl.sending.mime import MimeBuilder, check_header, encode_text
from mailctl.sending.templates import (
    SUBJECT_MAX,
    RenderClient,
    RenderFailed,
    compile_template,
    long_subject,
    render_failure,
)


@dataclass(frozen=True)
class MessageContent:
    """What a message says, as the renderer takes it."""

    subject: str
    body: str

    @classmethod
    def of(cls, message: Message) -> MessageContent:
        return cls(subject=message.subject, body=message.body)


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str
    data: bytes


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
    ) -> None:
        self._limits = limits
        try:
            self._subject, subject_jinja = compile_template(content.subject, limits)
            self._body, body_jinja = compile_template(content.body, limits)
        except TemplateSyntaxError as exc:
            raise RenderFailed(f"template error at line {exc.lineno}: {exc.message}") from None
        except (RecursionError, SyntaxError, MemoryError):
            raise RenderFailed("the template is nested too deeply") from None
        self._needs_meter = subject_jinja or body_jinja
        self._mime = MimeBuilder(from_address=from_address, from_name=from_name)
        self._unsubscribe = unsubscribe

    def _parts(self, client: RenderClient, unsubscribe_url: str) -> tuple[str, str]:
        if not self._needs_meter:
            return (
                self._subject(client, unsubscribe_url, None),
                self._body(client, unsubscribe_url, None),
            )
        with metered(self._limits) as current:
            return (
                self._subject(client, unsubscribe_url, current),
                self._body(client, unsubscribe_url, current),
            )

    def render(self, client: RenderClient, *, unsubscribe_url: str = "") -> Rendered:
        # The recipient address and the subject are checked for line breaks by the builder.
        try:
            subject, body = self._parts(client, unsubscribe_url)
        except Exception as exc:  # whatever a template raises, one line for this client
            raise RenderFailed(render_failure(exc)) from None
        if len(subject) > SUBJECT_MAX:
            raise RenderFailed(long_subject(len(subject)))
        encoded = encode_text(body)
        cap = self._limits.output_bytes
        if encoded.size > cap:
            raise RenderFailed(
                f"the body renders to {encoded.size:,} bytes, more than {cap:,}"
                " (render.max_output_bytes)"
            )
        headers: tuple[bytes, ...] = ()
        if self._unsubscribe and unsubscribe_url:
            check_header(unsubscribe_url, "the unsubscribe link")
            headers = (
                f"List-Unsubscribe: <{unsubscribe_url}>".encode(),
                b"List-Unsubscribe-Post: List-Unsubscribe=One-Click",
            )
        data = self._mime.build(
            to_name=client.full_name,
            to_address=client.email,
            subject=subject,
            body=encoded,
            headers=headers,
        )
        check_message_size(data, self._limits)
        return Rendered(subject=subject, body=body, data=data)
