"""A message for one client: its content's templates, rendered, as MIME bytes.

The renderer knows what a message is made of through `MessageContent`; the engine only hands
it a content value and a client. A new kind of content (HTML, Markdown) is a field there and a
part here, never a column in the engine.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailctl.models import Message
from mailctl.sending.mime import MimeBuilder, check_header
from mailctl.sending.templates import RenderClient, compile_template


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


class MessageRenderer:
    """Compiled once per message, renders one client at a time."""

    def __init__(
        self,
        content: MessageContent,
        *,
        from_address: str,
        from_name: str,
        unsubscribe: bool = False,
    ) -> None:
        self._subject = compile_template(content.subject)
        self._body = compile_template(content.body)
        self._mime = MimeBuilder(from_address=from_address, from_name=from_name)
        self._unsubscribe = unsubscribe

    def render(self, client: RenderClient, *, unsubscribe_url: str = "") -> Rendered:
        check_header(client.email, "the recipient address")
        subject = self._subject(client, unsubscribe_url)
        check_header(subject, "the subject")
        body = self._body(client, unsubscribe_url)
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
            text=body,
            headers=headers,
        )
        return Rendered(subject=subject, body=body, data=data)
