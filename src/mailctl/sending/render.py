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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate

from jinja2 import Template, TemplateSyntaxError, UndefinedError, meta, nodes
from jinja2.sandbox import SecurityError

from mailctl.errors import Invalid
from mailctl.sending.budget import (
    DEFAULT_LIMITS,
    BudgetExceeded,
    Meter,
    RenderLimits,
    metered,
)
from mailctl.sending.sandbox import Sandbox, render_metered

ALLOWED_FIELDS = ("email", "full_name", "first_name", "attrs.<field>")
_CRLF = re.compile(r"[\r\n]")
_ATEXT_SPECIALS = re.compile(r'[()<>\[\]:;@\\,."]')

# Text a header carries as it is (folded at its spaces): printable ASCII, no encoded-word
# lookalike. Anything else goes out as RFC 2047 encoded words.
_PLAIN_HEADER = re.compile(r"[\x20-\x7e]*")
_FOLD_TOKENS = re.compile(r" *[^ ]+| +$")
LINE_MAX = 998  # RFC 5322 2.1.1: no line, CRLF aside, may be longer
LINE_SOFT = 78  # ...and each SHOULD be at most this
# A subject longer than one header line can be is refused, not folded into dozens of lines.
SUBJECT_MAX = LINE_MAX
# Nodes of a template's syntax tree: a newsletter has tens to hundreds.
MAX_NODES = 5000

_env = Sandbox()


class Attrs(dict[str, str]):
    """A client's custom fields: a field the client has no value for renders as `fill`
    (empty), never as a template error that would fail the send."""

    def __init__(self, values: Mapping[str, str] | None = None, fill: str = "") -> None:
        super().__init__(values or {})
        self.fill = fill

    def __missing__(self, key: str) -> str:
        return self.fill


@dataclass(frozen=True)
class RenderClient:
    email: str
    full_name: str
    attrs: Attrs = field(default_factory=Attrs)

    @property
    def first_name(self) -> str:
        return self.full_name.split()[0] if self.full_name.strip() else ""


SAMPLE = RenderClient(email="sample@example.com", full_name="Sample Client")
# The largest client there can be (a 64-character local part, a 254-character address, a
# 200-character one-word name): a template within budget for it is within budget for all.
LARGEST = RenderClient(
    email="l" * 64 + "@" + ".".join(["d" * 61] * 3) + ".xyz",
    full_name="M" * 200,
    attrs=Attrs(fill="M" * 500),  # services/fields.py VALUE_MAX
)


class HeaderInjection(Invalid):
    pass


class RenderFailed(Invalid):
    """A message that cannot be built for a client: a template error, a budget exceeded."""


class MessageTooLarge(RenderFailed):
    pass


_MISSING_ATTR = re.compile(r"has no attribute '([^']*)'")


def _parse(text: str, field: str) -> Template:
    allowed = f"client.{', client.'.join(ALLOWED_FIELDS)}"
    try:
        ast = _env.parse(text)
        # Compiling costs about 50 us per node and no budget can interrupt it: cap the count.
        parts = sum(1 for _ in ast.find_all(nodes.Node))
        if parts > MAX_NODES:
            raise Invalid(
                f"{field}: the template is too complex ({parts:,} placeholders, tags and"
                f" expressions; at most {MAX_NODES:,})"
            )
        # Generating code (which this does) also checks that every filter and test exists.
        unknown = meta.find_undeclared_variables(ast) - {"client", "unsubscribe_url"}
        template = _env.from_string(ast)
    except TemplateSyntaxError as exc:  # TemplateAssertionError (unknown filter) is one too
        raise Invalid(f"{field}: template error at line {exc.lineno}: {exc.message}") from None
    except (RecursionError, SyntaxError, MemoryError):
        # Jinja's parser recurses per level; Python refuses deeply nested generated code.
        raise Invalid(f"{field}: the template is nested too deeply") from None
    if unknown:
        names = ", ".join(sorted(unknown))
        raise Invalid(f"{field}: unknown placeholder {names}; use {allowed}")
    return template


def _failure(exc: Exception) -> str:
    """What went wrong in a render, in one line."""
    if isinstance(exc, BudgetExceeded):
        return str(exc)
    if isinstance(exc, UndefinedError):
        missing = _MISSING_ATTR.search(exc.message or "")
        allowed = f"client.{', client.'.join(ALLOWED_FIELDS)}"
        what = f"unknown placeholder client.{missing.group(1)}" if missing else exc.message
        return f"{what}; use {allowed}"
    if isinstance(exc, SecurityError):
        return f"not allowed in a template: {exc}"
    if isinstance(exc, RecursionError):
        return "template fails to render: it recurses too deeply"
    return f"template fails to render: {exc}"


def validate_template(
    text: str,
    *,
    field: str,
    header: bool | None = None,
    limits: RenderLimits = DEFAULT_LIMITS,
    deadline: float | None = None,
) -> None:
    """Refuse a subject or body that would fail to render for a client, or exceed a budget.

    It is rendered for a sample client and for the largest client there can be, within one
    time budget (`deadline` shares it with the other part of the message). A header (the
    subject, unless told otherwise) must also render to a single line of at most 998
    characters: a `{{ "\\n" }}` in a subject would otherwise fail every recipient at send time.
    """
    if header is None:
        header = field == "subject"
    template = _parse(text, field)
    with metered(limits, deadline) as current:
        for client in (SAMPLE, LARGEST):
            whom = "" if client is SAMPLE else " (for a client with the longest name and address)"
            try:
                rendered = render_metered(
                    template, current, {"client": client, "unsubscribe_url": ""}
                )
            except Exception as exc:  # a template may raise anything at render time (1/0...)
                raise Invalid(f"{field}: {_failure(exc)}{whom}") from None
            if header:
                if _CRLF.search(rendered):
                    raise Invalid(f"{field}: must render to a single line")
                if len(rendered) > SUBJECT_MAX:
                    raise Invalid(f"{field}: {_long_subject(len(rendered))}{whom}")


def validate_message(subject: str, body: str, *, limits: RenderLimits = DEFAULT_LIMITS) -> None:
    """Both parts of a message, within one time budget: saving answers within it."""
    deadline = time.monotonic() + limits.seconds
    validate_template(subject, field="subject", limits=limits, deadline=deadline)
    validate_template(body, field="body", limits=limits, deadline=deadline)


def _long_subject(length: int) -> str:
    return (
        f"the subject renders to {length:,} characters; a header line holds at most"
        f" {SUBJECT_MAX} (RFC 5322)"
    )


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


def _body_bytes(body: str) -> tuple[bytes, str, int]:
    """The payload, its transfer encoding and the body's size in UTF-8: a line over 998
    characters, or any non-ASCII text, goes out as base64, never raw."""
    body = body.replace("\r\n", "\n").replace("\r", "\n")
    if body.isascii() and all(len(line) <= LINE_MAX for line in body.split("\n")):
        return body.replace("\n", "\r\n").encode("ascii"), "7bit", len(body)
    raw = body.encode("utf-8")
    return base64.encodebytes(raw).replace(b"\n", b"\r\n"), "base64", len(raw)


Part = Callable[[RenderClient, str, "Meter | None"], str]


def _compile(source: str, limits: RenderLimits = DEFAULT_LIMITS) -> tuple[Part, bool]:
    """A template as a function of (client, unsubscribe_url, meter), and whether it needs
    the meter (Jinja) or not.

    Most messages are text with `{{ client.x }}` in it. For those the parsed template is
    turned into a plain join, which renders the same text (no autoescape, no finalize) ten
    times faster than the sandbox; anything else (filters, tags, expressions) uses Jinja.
    """
    template = _env.from_string(source)
    cap = limits.output_bytes
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

        def join(client: RenderClient, unsubscribe_url: str, _meter: Meter | None) -> str:
            out = parts.copy()
            for index, attr in holes:
                out[index] = getattr(client, attr) if attr else unsubscribe_url
            text = "".join(out)
            if len(text) > cap:  # ten thousand {{ client.email }} are too many
                raise BudgetExceeded(
                    f"the template renders to more than {cap:,} bytes (render.max_output_bytes)"
                )
            return text

        return join, False

    def jinja(client: RenderClient, unsubscribe_url: str, current: Meter | None) -> str:
        assert current is not None
        return render_metered(
            template, current, {"client": client, "unsubscribe_url": unsubscribe_url}
        )

    return jinja, True


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str
    data: bytes


class MessageRenderer:
    """Compiled once per run, renders one client at a time.

    Every failure to build a message (a template error, a budget exceeded, a header that
    would break) is a RenderFailed or HeaderInjection with a one-line reason.
    """

    def __init__(
        self,
        *,
        subject: str,
        body: str,
        from_address: str,
        from_name: str,
        unsubscribe: bool = False,
        limits: RenderLimits = DEFAULT_LIMITS,
    ) -> None:
        self._limits = limits
        try:
            self._subject, subject_jinja = _compile(subject, limits)
            self._body, body_jinja = _compile(body, limits)
        except TemplateSyntaxError as exc:
            raise RenderFailed(f"template error at line {exc.lineno}: {exc.message}") from None
        except (RecursionError, SyntaxError, MemoryError):
            raise RenderFailed("the template is nested too deeply") from None
        self._needs_meter = subject_jinja or body_jinja
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
        check_header(client.email, "the recipient address")
        try:
            subject, body = self._parts(client, unsubscribe_url)
        except Exception as exc:  # whatever a template raises, one line for this client
            raise RenderFailed(_failure(exc)) from None
        check_header(subject, "the subject")
        if len(subject) > SUBJECT_MAX:
            raise RenderFailed(_long_subject(len(subject)))
        self._counter += 1
        payload, cte, size = _body_bytes(body)
        cap = self._limits.output_bytes
        if size > cap:
            raise RenderFailed(
                f"the body renders to {size:,} bytes, more than {cap:,} (render.max_output_bytes)"
            )
        headers = [
            b"From: " + self._from,
            b"To: " + format_address(client.full_name, client.email, used=4).encode(),
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
        check_message_size(data, self._limits)
        return Rendered(subject=subject, body=body, data=data)


def check_message_size(data: bytes, limits: RenderLimits) -> None:
    """The whole message against render.max_message_bytes, before any byte goes out."""
    if len(data) > limits.message_bytes:
        raise MessageTooLarge(
            f"the message is {len(data):,} bytes, more than {limits.message_bytes:,}"
            " (render.max_message_bytes)"
        )
