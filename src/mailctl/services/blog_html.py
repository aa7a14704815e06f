"""A blog post's content is Markdown: rendered to HTML, then sanitised (nh3, the Ammonia
sanitiser) before any page shows it, so a post can never carry a script, an event handler
or a javascript: link, whoever wrote it."""

from __future__ import annotations

import html as html_lib
from functools import cache
from typing import Any

from mailctl.models import User
from mailctl.services.access import EDITOR_ROLES, require_role

# Links and images to the web and mail only; no data:, javascript:, vbscript: and the like.
URL_SCHEMES = {"http", "https", "mailto"}


@cache
def _markdown() -> Any:
    from markdown_it import MarkdownIt

    # Raw HTML is parsed (an editor may paste some), then sanitised like everything else.
    return MarkdownIt("commonmark").enable(["table", "strikethrough"])


def post_html(content: str) -> str:
    """The post's Markdown as sanitised HTML, safe to put in a page as it is."""
    import nh3

    rendered = _markdown().render(content)
    return str(
        nh3.clean(
            rendered,
            url_schemes=URL_SCHEMES,
            link_rel="noopener noreferrer nofollow",
            # Nothing that could style the page over the panel's own stylesheet.
            attributes={
                "a": {"href", "title"},
                "img": {"src", "alt", "title", "width", "height"},
                "th": {"align"},
                "td": {"align"},
                "ol": {"start"},
                "code": set(),
            },
        )
    )


def html_text(html: str) -> str:
    """Sanitised HTML as plain text (excerpts on the cards): no tag left."""
    import nh3

    return html_lib.unescape(nh3.clean(html, tags=set()))


def preview_post(*, actor: User, content: str) -> str:
    """What the editor's preview shows: the same HTML the blog will."""
    require_role(actor, EDITOR_ROLES, "preview blog posts")
    return post_html(content)
