"""Subjects and bodies as sandboxed Jinja2 templates over one client: checked when saved
(within the render budget, for a sample and for the largest possible client), compiled once
per message, rendered once per recipient."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field

from jinja2 import Template, TemplateSyntaxError, UndefinedError, meta, nodes
from jinja2.sandbox import SecurityError
from markupsafe import escape

from mailctl.errors import Invalid
from mailctl.sending.budget import (
    DEFAULT_LIMITS,
    BudgetExceeded,
    Meter,
    RenderLimits,
    metered,
)
from mailctl.sending.budget import now as budget_now
from mailctl.sending.mime import LINE_MAX
from mailctl.sending.sandbox import Sandbox, render_metered

ALLOWED_FIELDS = ("email", "full_name", "first_name", "attrs.<field>")
_CRLF = re.compile(r"[\r\n]")
# A subject longer than one header line can be is refused, not folded into dozens of lines.
SUBJECT_MAX = LINE_MAX
# Nodes of a template's syntax tree: a newsletter has tens to hundreds.
MAX_NODES = 5000

# Values a template may use beside `client`: links made per recipient, and the sender's
# footer lines (a layout's). The renderer always passes all of them.
LINK_NAMES = ("unsubscribe_url", "web_url")
NAMES = (*LINK_NAMES, "sender_name", "postal_address")
SAMPLE_VALUES: dict[str, str] = {
    "unsubscribe_url": "",
    "web_url": "",
    "sender_name": "Sample Sender",
    "postal_address": "1 Sample Street, Sample Town",
}

_env = Sandbox()
# What HTML escaping changes (markupsafe's set): a value without any is already escaped.
_SPECIAL = re.compile(r"[&<>\"']")
# The HTML part: a client's name is text there, never markup.
_html_env = Sandbox(autoescape=True)


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
    attrs: Attrs = dataclass_field(default_factory=Attrs)

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


class RenderFailed(Invalid):
    """A message that cannot be built for a client: a template error, a budget exceeded."""


# Only a field missing on the client is an unknown placeholder; `client.email.nope` is not.
_MISSING_ATTR = re.compile(r"RenderClient object' has no attribute '([^']*)'")


def _parse(text: str, field: str, env: Sandbox = _env) -> Template:
    allowed = f"client.{', client.'.join(ALLOWED_FIELDS)}, {', '.join(NAMES)}"
    try:
        ast = env.parse(text)
        # Compiling costs about 50 us per node and no budget can interrupt it: cap the count.
        parts = sum(1 for _ in ast.find_all(nodes.Node))
        if parts > MAX_NODES:
            raise Invalid(
                f"{field}: the template is too complex ({parts:,} placeholders, tags and"
                f" expressions; at most {MAX_NODES:,})"
            )
        # Generating code (which this does) also checks that every filter and test exists.
        unknown = meta.find_undeclared_variables(ast) - {"client", *NAMES}
        template = env.from_string(ast)
    except TemplateSyntaxError as exc:  # TemplateAssertionError (unknown filter) is one too
        raise Invalid(f"{field}: template error at line {exc.lineno}: {exc.message}") from None
    except (RecursionError, SyntaxError, MemoryError):
        # Jinja's parser recurses per level; Python refuses deeply nested generated code.
        raise Invalid(f"{field}: the template is nested too deeply") from None
    if unknown:
        names = ", ".join(sorted(unknown))
        raise Invalid(f"{field}: unknown placeholder {names}; use {allowed}")
    return template


def render_failure(exc: Exception) -> str:
    """What went wrong in a render, in one line."""
    if isinstance(exc, BudgetExceeded):
        return str(exc)
    if isinstance(exc, UndefinedError):
        missing = _MISSING_ATTR.search(exc.message or "")
        if missing is None:
            return f"template fails to render: {exc.message}"
        allowed = f"client.{', client.'.join(ALLOWED_FIELDS)}"
        return f"unknown placeholder client.{missing.group(1)}; use {allowed}"
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
    html: bool = False,
    values: Mapping[str, str] = SAMPLE_VALUES,
) -> None:
    """Refuse a subject or body that would fail to render for a client, or exceed a budget.

    It is rendered for a sample client and for the largest client there can be, within one
    time budget (`deadline` shares it with the other part of the message). A header (the
    subject, unless told otherwise) must also render to a single line of at most 998
    characters: a `{{ "\\n" }}` in a subject would otherwise fail every recipient at send time.
    """
    if header is None:
        header = field == "subject"
    template = _parse(text, field, _html_env if html else _env)
    with metered(limits, deadline) as current:
        for client in (SAMPLE, LARGEST):
            whom = "" if client is SAMPLE else " (for a client with the longest name and address)"
            try:
                rendered = render_metered(template, current, {"client": client, **values})
            except Exception as exc:  # a template may raise anything at render time (1/0...)
                raise Invalid(f"{field}: {render_failure(exc)}{whom}") from None
            if header:
                if _CRLF.search(rendered):
                    raise Invalid(f"{field}: must render to a single line")
                if len(rendered) > SUBJECT_MAX:
                    raise Invalid(f"{field}: {long_subject(len(rendered))}{whom}")


def validate_message(subject: str, body: str, *, limits: RenderLimits = DEFAULT_LIMITS) -> None:
    """Both parts of a message, within one time budget: saving answers within it."""
    deadline = budget_now() + limits.seconds
    validate_template(subject, field="subject", limits=limits, deadline=deadline)
    validate_template(body, field="body", limits=limits, deadline=deadline)


def long_subject(length: int) -> str:
    return (
        f"the subject renders to {length:,} characters; a header line holds at most"
        f" {SUBJECT_MAX} (RFC 5322)"
    )


Part = Callable[[RenderClient, Mapping[str, str], "Meter | None"], str]


def compile_template(
    source: str, limits: RenderLimits = DEFAULT_LIMITS, *, html: bool = False
) -> tuple[Part, bool]:
    """A template as a function of (client, values of NAMES, meter), and whether it needs
    the meter (Jinja) or not; `html` escapes every value (the HTML part).

    Most messages are text with `{{ client.x }}` in it. For those the parsed template is
    turned into a plain join, which renders the same text (no finalize; escaped as Jinja
    escapes) ten times faster than the sandbox; anything else (filters, tags, expressions)
    uses Jinja.
    """
    env = _html_env if html else _env
    template = env.from_string(source)
    cap = limits.output_bytes
    parts: list[str] = []
    holes: list[tuple[int, str, bool]] = []  # (where, name, a client field?)
    for node in env.parse(source).body:
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
                holes.append((len(parts), child.attr, True))
                parts.append("")
            elif isinstance(child, nodes.Name) and child.name in NAMES:
                holes.append((len(parts), child.name, False))
                parts.append("")
            else:
                break
        else:
            continue
        break
    else:

        def join(client: RenderClient, values: Mapping[str, str], _meter: Meter | None) -> str:
            out = parts.copy()
            for index, name, field in holes:
                value = getattr(client, name) if field else values[name]
                # Most values (addresses, links) have nothing to escape: skip the Markup.
                out[index] = str(escape(value)) if html and _SPECIAL.search(value) else value
            text = "".join(out)
            if len(text) > cap:  # ten thousand {{ client.email }} are too many
                raise BudgetExceeded(
                    f"the template renders to more than {cap:,} bytes (render.max_output_bytes)"
                )
            return text

        return join, False

    def jinja(client: RenderClient, values: Mapping[str, str], current: Meter | None) -> str:
        assert current is not None
        return render_metered(template, current, {"client": client, **values})

    return jinja, True
