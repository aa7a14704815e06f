"""A message for one client: sandboxed Jinja2 templates and hand-built MIME bytes.

The `email` package costs about a millisecond per message; at thousands of recipients a second
that alone is the bottleneck. The headers here are few and fixed, so they are built directly,
with the per-run parts (From, templates, encodings) prepared once.
"""

from __future__ import annotations

import base64
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, meta, nodes
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from mailctl.errors import Invalid

ALLOWED_FIELDS = ("email", "full_name", "first_name")
_CRLF = re.compile(r"[\r\n]")
_ATEXT_SPECIALS = re.compile(r'[()<>\[\]:;@\\,."]')

# Text a header carries as it is: printable ASCII, no encoded-word lookalike, well under the
# 998-character line limit. Anything else goes out as RFC 2047 encoded words.
_PLAIN_HEADER = re.compile(r"[\x20-\x7e]{0,900}")
MAX_REPEAT = 100_000  # 'x' * n and n ** m in a template: enough for any message, not a DoS


class _Sandbox(SandboxedEnvironment):
    """The stock sandbox lets `{{ 'x' * 10**10 }}` exhaust memory; refuse huge products."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int) and abs(right) > 100:
            raise SecurityError("exponent too large")
        if operator == "*":
            sized = (str, bytes, list, tuple)
            count = right if isinstance(left, sized) else left if isinstance(right, sized) else 1
            if isinstance(count, int) and count > MAX_REPEAT:
                raise SecurityError("repetition too large")
        return super().call_binop(context, operator, left, right)


_env = _Sandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


@dataclass(frozen=True)
class RenderClient:
    email: str
    full_name: str

    @property
    def first_name(self) -> str:
        return self.full_name.split()[0] if self.full_name.strip() else ""


SAMPLE = RenderClient(email="sample@example.com", full_name="Sample Client")


class HeaderInjection(Invalid):
    pass


_MISSING_ATTR = re.compile(r"has no attribute '([^']*)'")


def validate_template(text: str, *, field: str, header: bool | None = None) -> None:
    """Refuse a subject or body that would fail to render for a client.

    A header (the subject, unless told otherwise) must also render to a single line: a
    `{{ "\\n" }}` in a subject would otherwise fail every recipient at send time.
    """
    if header is None:
        header = field == "subject"
    allowed = f"client.{', client.'.join(ALLOWED_FIELDS)}"
    try:
        ast = _env.parse(text)
        # Compiling (which this does) also checks that every filter and test exists.
        unknown = meta.find_undeclared_variables(ast) - {"client", "unsubscribe_url"}
    except TemplateSyntaxError as exc:  # TemplateAssertionError (unknown filter) is one too
        raise Invalid(f"{field}: template error at line {exc.lineno}: {exc.message}") from None
    if unknown:
        names = ", ".join(sorted(unknown))
        raise Invalid(f"{field}: unknown placeholder {names}; use {allowed}")
    try:
        rendered = _env.from_string(ast).render(client=SAMPLE, unsubscribe_url="")
    except UndefinedError as exc:
        missing = _MISSING_ATTR.search(exc.message or "")
        what = f"unknown placeholder client.{missing.group(1)}" if missing else exc.message
        raise Invalid(f"{field}: {what}; use {allowed}") from None
    except SecurityError as exc:
        raise Invalid(f"{field}: not allowed in a template: {exc}") from None
    except Exception as exc:  # a template may raise anything at render time (1/0, bad filters)
        raise Invalid(f"{field}: template fails to render: {exc}") from None
    if header and _CRLF.search(rendered):
        raise Invalid(f"{field}: must render to a single line")


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


def _body_bytes(body: str) -> tuple[bytes, str]:
    body = body.replace("\r\n", "\n").replace("\r", "\n")
    if body.isascii() and all(len(line) <= 998 for line in body.split("\n")):
        return body.replace("\n", "\r\n").encode("ascii"), "7bit"
    raw = base64.encodebytes(body.encode("utf-8")).replace(b"\n", b"\r\n")
    return raw, "base64"


def _compile(source: str) -> Callable[[RenderClient, str], str]:
    """A template as a function of (client, unsubscribe_url).

    Most messages are text with `{{ client.x }}` in it. For those the parsed template is
    turned into a plain join, which renders the same text (no autoescape, no finalize) ten
    times faster than the sandbox; anything else (filters, tags, expressions) uses Jinja.
    """
    template = _env.from_string(source)
    parts: list[str] = []
    holes: list[tuple[int, str]] = []
    for node in _env.parse(source).body:
        if not isinstance(node, nodes.Output):
            break
        for child in node.nodes:
            if isinstance(child, nodes.TemplateData):
                parts.append(child.data)
            elif (
                isinstance(child, nodes.Getattr)
                and isinstance(child.node, nodes.Name)
                and child.node.name == "client"
                and child.attr in ALLOWED_FIELDS
            ):
                holes.append((len(parts), child.attr))
                parts.append("")
            elif isinstance(child, nodes.Name) and child.name == "unsubscribe_url":
                holes.append((len(parts), ""))
                parts.append("")
            else:
                break
        else:
            continue
        break
    else:

        def join(client: RenderClient, unsubscribe_url: str) -> str:
            out = parts.copy()
            for index, attr in holes:
                out[index] = getattr(client, attr) if attr else unsubscribe_url
            return "".join(out)

        return join

    def jinja(client: RenderClient, unsubscribe_url: str) -> str:
        return template.render(client=client, unsubscribe_url=unsubscribe_url)

    return jinja


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str
    data: bytes


class MessageRenderer:
    """Compiled once per run, renders one client at a time."""

    def __init__(
        self,
        *,
        subject: str,
        body: str,
        from_address: str,
        from_name: str,
        unsubscribe: bool = False,
    ) -> None:
        self._subject = _compile(subject)
        self._body = _compile(body)
        self._from = format_address(from_name, from_address).encode()
        self._domain = from_address.rpartition("@")[2] or "localhost"
        self._unsubscribe = unsubscribe
        self._date_second = -1
        self._date = b""
        self._counter = 0
        self._prefix = f"{int(time.time())}.{os.getpid()}.{os.urandom(4).hex()}"

    def _date_header(self) -> bytes:
        now = int(time.time())
        if now != self._date_second:
            self._date_second, self._date = now, formatdate(now, usegmt=True).encode()
        return self._date

    def render(self, client: RenderClient, *, unsubscribe_url: str = "") -> Rendered:
        check_header(client.email, "the recipient address")
        subject = self._subject(client, unsubscribe_url)
        check_header(subject, "the subject")
        body = self._body(client, unsubscribe_url)
        self._counter += 1
        payload, cte = _body_bytes(body)
        headers = [
            b"From: " + self._from,
            b"To: " + format_address(client.full_name, client.email).encode(),
            b"Subject: " + encode_header(subject).encode(),
            b"Date: " + self._date_header(),
            f"Message-ID: <{self._prefix}.{self._counter}@{self._domain}>".encode(),
            b"MIME-Version: 1.0",
            b'Content-Type: text/plain; charset="utf-8"',
            b"Content-Transfer-Encoding: " + cte.encode(),
        ]
        if self._unsubscribe and unsubscribe_url:
            check_header(unsubscribe_url, "the unsubscribe link")
            headers.append(f"List-Unsubscribe: <{unsubscribe_url}>".encode())
            headers.append(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click")
        data = b"\r\n".join(headers) + b"\r\n\r\n" + payload
        if not data.endswith(b"\r\n"):
            data += b"\r\n"
        return Rendered(subject=subject, body=body, data=data)
