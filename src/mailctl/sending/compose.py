"""The parts of an HTML message, built once per message (never per recipient): Markdown to
HTML, the layout around it, its CSS inlined, and the plain-text alternative.

A body and a layout are templates, so their placeholders (`{{ client.first_name }}`, `{% if
... %}`) must come through Markdown, an HTML parser, the CSS inliner and the text converter
untouched: each one is swapped for an opaque word first and put back at the end. What comes
out is two template sources (HTML, text) that `templates.compile_template` turns into one
render per recipient; only that render is personal.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

from mailctl.errors import Invalid
from mailctl.models.message import BodyFormat

# Jinja's three kinds of markup, outermost first; a comment or tag may span lines.
_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
CONTENT = re.compile(r"\{\{-?\s*content\s*-?\}\}")
# What a layout or body may use beside the client's fields.
LAYOUT_NAMES = ("content", "sender_name", "postal_address", "unsubscribe_url", "web_url")


@cache
def default_layout() -> str:
    """The layout that ships with mailctl: table-based, 600 px, dark mode aware."""
    return (files("mailctl.sending") / "layouts" / "default.html").read_text(encoding="utf-8")


@cache
def _markdown() -> Any:
    from markdown_it import MarkdownIt

    # CommonMark (raw HTML allowed: the author's own message) plus GitHub's tables and
    # strikethrough; no typographer, which would turn quotes inside placeholders curly.
    return MarkdownIt("commonmark").enable(["table", "strikethrough"])


@cache
def _inliner() -> Any:
    import css_inline

    # Rules that cannot be inlined (@media for dark mode and small screens) stay in a
    # <style> block for the clients that read it; nothing is fetched from the network.
    return css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)


@cache
def _text_config() -> Any:
    from inscriptis.css_profiles import CSS_PROFILES
    from inscriptis.model.config import ParserConfig
    from inscriptis.model.css import CssParse

    # display_links: a link's target is written after its text, so it stays usable.
    config = ParserConfig(css=CSS_PROFILES["strict"], display_links=True)
    # A layout's align="center" cells would indent the text part's lines by dozens of
    # spaces; inline styles still count (display: none hides a preheader).
    config.attribute_handler.attribute_mapping = {"style": CssParse.attr_style}
    return config


class _Placeholders:
    """Placeholders swapped for words no Markdown, HTML or CSS processor changes."""

    def __init__(self) -> None:
        # One word that no processor splits, escapes or links, and that starts with a digit,
        # so that `<{{ x }}>` can never be read as an HTML tag.
        self._mark = "0mctl" + "".join(secrets.choice("bcdfghjkmnpqrstvwxz") for _ in range(8))
        self._found = re.compile(self._mark + r"(\d+)q")
        self._sources: list[str] = []

    def protect(self, source: str) -> str:
        def swap(match: re.Match[str]) -> str:
            self._sources.append(match.group(0))
            return f"{self._mark}{len(self._sources) - 1}q"

        return _JINJA.sub(swap, source)

    def restore(self, text: str) -> str:
        return self._found.sub(lambda m: self._sources[int(m.group(1))], text)


@dataclass(frozen=True)
class Composed:
    """The template sources of a message's two parts."""

    html: str
    text: str


def markdown_to_html(source: str) -> str:
    return str(_markdown().render(source))


def html_to_text(html: str) -> str:
    from inscriptis import Inscriptis
    from lxml.html import document_fromstring

    if not html.strip():
        return ""
    tree = document_fromstring(html)
    text = str(Inscriptis(tree, _text_config()).get_text())
    # Blank lines collapsed to one and trailing spaces dropped: the layout's table cells
    # would otherwise leave runs of indented empty lines.
    out: list[str] = []
    for line in text.splitlines():
        line = line.rstrip()
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip("\n") + "\n"


def inline_css(html: str) -> str:
    import css_inline

    try:
        return str(_inliner().inline(html))
    except (css_inline.InlineError, ValueError) as exc:
        raise Invalid(f"the HTML's CSS cannot be inlined: {exc}") from None


def compose(body: str, fmt: str, layout: str | None) -> Composed:
    """A Markdown or HTML body inside its layout (the default one if None), as the template
    sources of the HTML part (CSS inlined) and of the text part (made from the HTML)."""
    if fmt == BodyFormat.text:
        raise ValueError("a text message has no HTML part")
    marks = _Placeholders()
    content = marks.protect(body)
    if fmt == BodyFormat.markdown:
        content = markdown_to_html(content)
    source = layout if layout is not None else default_layout()
    parts = CONTENT.split(source)
    # Each piece protected on its own, then joined with the body: a `{{ content }}` the
    # body itself writes is not the layout's.
    document = content.join(marks.protect(piece) for piece in parts)
    # Characters beyond ASCII as character references (placeholders are ASCII words here):
    # the HTML part then goes out as 7bit text, not base64, unless a line is too long.
    inlined = inline_css(document).encode("ascii", "xmlcharrefreplace").decode("ascii")
    html = marks.restore(inlined)
    text = marks.restore(html_to_text(document))
    return Composed(html=html, text=text)
