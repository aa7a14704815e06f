"""MIME bytes built by hand, for mailings and account notices alike.

The `email` package costs about a millisecond per message; at thousands of recipients a second
that alone is the bottleneck. The headers here are few and fixed, so they are built directly,
with the per-sender parts (From, domain, Message-ID prefix) prepared once. Every value that
reaches a header goes through `check_header`, so no user-typed text can add one.
"""

from __future__ import annotations

import base64
import os
import re
import time
from collections.abc import Iterable
from email.utils import formatdate

from mailctl.errors import Invalid

_CRLF = re.compile(r"[\r\n]")
_ATEXT_SPECIALS = re.compile(r'[()<>\[\]:;@\\,."]')
# Text a header carries as it is: printable ASCII, no encoded-word lookalike, well under the
# 998-character line limit. Anything else goes out as RFC 2047 encoded words.
_PLAIN_HEADER = re.compile(r"[\x20-\x7e]{0,900}")


class HeaderInjection(Invalid):
    pass


def check_header(value: str, what: str) -> str:
    if _CRLF.search(value):
        raise HeaderInjection(f"{what} contains a line break")
    return value


def encode_header(value: str) -> str:
    """RFC 2047 encoded words when needed, split so no encoded word passes 75 characters."""
    if _PLAIN_HEADER.fullmatch(value) and "=?" not in value:
        return value
    raw = value.encode()
    if len(raw) <= 45:  # most names and many subjects: one word
        return f"=?utf-8?b?{base64.b64encode(raw).decode()}?="
    words, chunk = [], ""
    for char in value:
        # base64 of up to 45 bytes is 60 characters, plus the 12 of =?utf-8?b??=
        if len((chunk + char).encode()) > 45:
            words.append(chunk)
            chunk = ""
        chunk += char
    words.append(chunk)
    return "\r\n ".join(f"=?utf-8?b?{base64.b64encode(w.encode()).decode()}?=" for w in words)


def format_address(name: str, address: str) -> str:
    check_header(name, "a display name")
    check_header(address, "an address")
    if not name:
        return f"<{address}>"
    if _PLAIN_HEADER.fullmatch(name) and "=?" not in name:
        if _ATEXT_SPECIALS.search(name):
            name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return f"{name} <{address}>"
    return f"{encode_header(name)} <{address}>"


def encode_text(text: str) -> tuple[bytes, str]:
    """A text body with CRLF line ends and its Content-Transfer-Encoding: 7bit when it may
    go as it is, else base64."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if text.isascii() and all(len(line) <= 998 for line in text.split("\n")):
        return text.replace("\n", "\r\n").encode("ascii"), "7bit"
    return base64.encodebytes(text.encode("utf-8")).replace(b"\n", b"\r\n"), "base64"


class MimeBuilder:
    """Builds whole messages from one sender: the one place a message's bytes are made."""

    def __init__(self, *, from_address: str, from_name: str) -> None:
        self._from = format_address(from_name, from_address).encode()
        self._domain = from_address.rpartition("@")[2] or "localhost"
        self._date_second = -1
        self._date = b""
        self._counter = 0
        self._prefix = f"{int(time.time())}.{os.getpid()}.{os.urandom(4).hex()}"

    def _date_header(self) -> bytes:
        now = int(time.time())
        if now != self._date_second:
            self._date_second, self._date = now, formatdate(now, usegmt=True).encode()
        return self._date

    def build(
        self,
        *,
        to_name: str,
        to_address: str,
        subject: str,
        text: str,
        headers: Iterable[bytes] = (),
    ) -> bytes:
        """A text/plain message; `headers` (already checked) go after the standard ones."""
        check_header(to_address, "the recipient address")
        check_header(subject, "the subject")
        self._counter += 1
        payload, cte = encode_text(text)
        lines = [
            b"From: " + self._from,
            b"To: " + format_address(to_name, to_address).encode(),
            b"Subject: " + encode_header(subject).encode(),
            b"Date: " + self._date_header(),
            f"Message-ID: <{self._prefix}.{self._counter}@{self._domain}>".encode(),
            b"MIME-Version: 1.0",
            b'Content-Type: text/plain; charset="utf-8"',
            b"Content-Transfer-Encoding: " + cte.encode(),
            *headers,
        ]
        data = b"\r\n".join(lines) + b"\r\n\r\n" + payload
        if not data.endswith(b"\r\n"):
            data += b"\r\n"
        return data
