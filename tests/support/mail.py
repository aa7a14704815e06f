"""The emails mailctl wrote with the outbox transport (the default), parsed."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage
from pathlib import Path

from mailctl.config import Settings


def outbox(settings: Settings) -> list[EmailMessage]:
    """Every message the outbox transport wrote, oldest first, parsed."""
    folder = Path(settings.delivery.outbox_dir)
    if not folder.is_dir():
        return []
    files = sorted(folder.glob("*.eml"), key=lambda p: p.name)
    return [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
        for p in files
    ]


def mail_link(message: EmailMessage, prefix: str) -> str:
    """The path of the first link in the message whose path starts with prefix."""
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    match = re.search(r"https?://[^/\s]+(" + re.escape(prefix) + r"\S*)", text)
    assert match, f"no {prefix} link in: {text}"
    return match.group(1)
