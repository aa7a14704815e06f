"""MIME bytes built by hand, for mailings and account notices alike.

The `email` package costs about a millisecond per message; at thousands of recipients a second
that alone is the bottleneck. The headers here are few and fixed, so they are built directly,
with the per-sender parts (From, domain, Message-ID prefix) prepared once. Every value that
reaches a header goes through `check_header`, so no user-typed text can add one; headers are
folded and lines kept within RFC 5322's limits.
"""

from __future__ import annotations

import base64
import os
import re
import time
from collections.abc import Iterable
from email.utils import formatdate
from typing import NamedTuple

from mailctl.errors import Invalid

_CRLF = re.compile(r"[\r\n]")
_ATEXT_SPECIALS = re.compile(r'[()<>\[\]:;@\\,."]')
# Text a header carries as it is (folded at its spaces): printable ASCII, no encoded-word
# lookalike. Anything else goes out as RFC 2047 encoded words.
_PLAIN_HEADER = re.compile(r"[\x20-\x7e]*")
_FOLD_TOKENS = re.compile(r" *[^ ]+| +$")
LINE_MAX = 998  # RFC 5322 2.1.1: no line, CRLF aside, may be longer
LINE_SOFT = 78  # ...and each SHOULD be at most this


class HeaderInjection(Invalid):
    pass


def check_header(value: str, what: str) -> str:
    if _CRLF.search(value):
        raise HeaderInjection(f"{what} contains a line break")
    return value


def _fold(value: str, used: int) -> str | None:
    """Plain text folded at its spaces (RFC 5322 2.2.3), so lines stay short; None if a
    word is too long for any line."""
    if used + len(value) <= LINE_SOFT:
        return value
    lines: list[str] = []
    line = ""
    room = LINE_SOFT - used
    for token in _FOLD_TOKENS.findall(value):
        if line and line.strip() and token.strip() and len(line) + len(token) > room:
            lines.append(line)
            line, room = "", LINE_SOFT
        line += token
    lines.append(line)
    if used + len(lines[0]) > LINE_MAX or any(len(x) > LINE_MAX for x in lines[1:]):
        return None
    return "\r\n".join(lines)


def encode_header(value: str, *, used: int = len("Subject: ")) -> str:
    """A header value as it goes on the wire: plain ASCII folded at spaces, anything else as
    RFC 2047 encoded words, split so no encoded word passes 75 characters. `used` is how
    much of the first line the header's name takes."""
    if _PLAIN_HEADER.fullmatch(value) and "=?" not in value:
        folded = _fold(value, used)
        if folded is not None:
            return folded
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


def format_address(name: str, address: str, *, used: int = len("From: ")) -> str:
    check_header(name, "a display name")
    check_header(address, "an address")
    if not name:
        return f"<{address}>"
    if _PLAIN_HEADER.fullmatch(name) and "=?" not in name and len(name) <= 900:
        if _ATEXT_SPECIALS.search(name):
            name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        shown = _fold(name, used) or name  # FWS may fold a phrase, quoted or not
    else:
        shown = encode_header(name, used=used)
    start, last_line = (0, shown.rpartition("\n")[2]) if "\n" in shown else (used, shown)
    # Folded before the address when the line would run long (CFWS may precede "<").
    gap = "\r\n " if start + len(last_line) + len(address) + 3 > LINE_SOFT else " "
    return f"{shown}{gap}<{address}>"


class EncodedText(NamedTuple):
    payload: bytes
    cte: str  # Content-Transfer-Encoding
    size: int  # the text's size in UTF-8, line ends normalised


def encode_text(text: str) -> EncodedText:
    """A text body with CRLF line ends: a line over 998 characters, or any non-ASCII text,
    goes out as base64, never raw."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    # max(map(len, ...)) runs in C: a newsletter's HTML has a hundred lines.
    if text.isascii() and max(map(len, text.split("\n"))) <= LINE_MAX:
        return EncodedText(text.replace("\n", "\r\n").encode("ascii"), "7bit", len(text))
    raw = text.encode("utf-8")
    return EncodedText(_base64_lines(raw), "base64", len(raw))


def _base64_lines(raw: bytes) -> bytes:
    """Base64 in lines of 76 (RFC 2045) with CRLF: encoded at once, then cut, which is several
    times faster than base64.encodebytes' loop over 57-byte chunks for a newsletter's HTML."""
    encoded = base64.b64encode(raw)
    return b"".join(encoded[i : i + 76] + b"\r\n" for i in range(0, len(encoded), 76))


class MimeBuilder:
    """Builds whole messages from one sender: the one place a message's bytes are made."""

    def __init__(self, *, from_address: str, from_name: str) -> None:
        self._from = format_address(from_name, from_address).encode()
        self._domain = from_address.rpartition("@")[2] or "localhost"
        self._date_second = -1
        self._date = b""
        self._counter = 0
        self._prefix = f"{int(time.time())}.{os.getpid()}.{os.urandom(4).hex()}"
        # Random once per builder, numbered per message: os.urandom per message costs more
        # than the rest of the multipart wrapping.
        self._boundary = f"=_mailctl_{os.urandom(9).hex()}_".encode()

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
        body: EncodedText,
        headers: Iterable[bytes] = (),
        html: EncodedText | None = None,
    ) -> bytes:
        """A text/plain message, or multipart/alternative (the text first, then `html`, as
        RFC 2046 orders them: plainest first); `headers` (already checked) go after the
        standard ones."""
        check_header(to_address, "the recipient address")
        check_header(subject, "the subject")
        payload, cte, _size = body
        self._counter += 1
        lines = [
            b"From: " + self._from,
            b"To: " + format_address(to_name, to_address, used=4).encode(),
            b"Subject: " + encode_header(subject).encode(),
            b"Date: " + self._date_header(),
            f"Message-ID: <{self._prefix}.{self._counter}@{self._domain}>".encode(),
            b"MIME-Version: 1.0",
        ]
        if html is None:
            lines += [_TEXT_PLAIN, b"Content-Transfer-Encoding: " + cte.encode(), *headers]
            return _ended(b"\r\n".join(lines) + b"\r\n\r\n" + payload)
        boundary = _boundary(self._boundary + str(self._counter).encode(), payload, html.payload)
        lines += [b'Content-Type: multipart/alternative; boundary="' + boundary + b'"', *headers]
        dash = b"--" + boundary
        return (
            b"\r\n".join(lines)
            + b"\r\n\r\n"
            + b"".join(
                (
                    dash + b"\r\n" + _TEXT_PLAIN,
                    b"\r\nContent-Transfer-Encoding: " + cte.encode() + b"\r\n\r\n",
                    _ended(payload),
                    dash + b"\r\n" + b'Content-Type: text/html; charset="utf-8"',
                    b"\r\nContent-Transfer-Encoding: " + html.cte.encode() + b"\r\n\r\n",
                    _ended(html.payload),
                    dash + b"--\r\n",
                )
            )
        )


_TEXT_PLAIN = b'Content-Type: text/plain; charset="utf-8"'


def _ended(data: bytes) -> bytes:
    return data if data.endswith(b"\r\n") else data + b"\r\n"


def _boundary(boundary: bytes, *payloads: bytes) -> bytes:
    """A boundary found in neither part ("=_" never occurs in base64, and a random one
    almost never in text: checked all the same)."""
    while any(boundary in payload for payload in payloads):
        boundary = f"=_mailctl_{os.urandom(12).hex()}".encode()
    return boundary
