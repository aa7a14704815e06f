"""Subjects and bodies as sandboxed Jinja2 templates over one client: checked when saved,
compiled once per message, rendered once per recipient."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, meta, nodes
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from mailctl.errors import Invalid

ALLOWED_FIELDS = ("email", "full_name", "first_name")
_CRLF = re.compile(r"[\r\n]")
MAX_REPEAT = 100_000  # 'x' * n and n ** m in a template: enough for any message, not a DoS


class _Sandbox(SandboxedEnvironment):
    """The stock sandbox lets `{{ 'x' * 10**10 }}` exhaust memory; refuse huge products."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context, operator, left, right):  # type: ignore[no-untyped-def]
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


def compile_template(source: str) -> Callable[[RenderClient, str], str]:
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
