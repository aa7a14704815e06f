"""Responses that carry a user's HTML (a message, a layout): never part of a panel page.

The panel shows them in `<iframe sandbox="">` pointing here, and these responses carry
their own policy on top: `sandbox` (an opaque origin, no script, no forms, no popups even
when opened on their own), nothing loaded but inline styles and images, framed only by the
panel itself. The view-in-browser page is the same without framing.
"""

from __future__ import annotations

from html import escape

from starlette.responses import HTMLResponse

_POLICY = (
    "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
    "font-src https: data:; base-uri 'none'; form-action 'none'; frame-ancestors {ancestors}"
)


def user_html(html: str | None, text: str = "", *, framed: bool = True) -> HTMLResponse:
    """The HTML part, or the text part in a <pre> for a plain-text message."""
    if html is None:
        html = (
            '<!DOCTYPE html><meta charset="utf-8"><pre style="white-space: pre-wrap;'
            ' font: 15px/1.5 monospace; margin: 16px;">' + escape(text) + "</pre>"
        )
    return HTMLResponse(
        html,
        headers={
            "Content-Security-Policy": _POLICY.format(ancestors="'self'" if framed else "'none'"),
            "X-Frame-Options": "SAMEORIGIN" if framed else "DENY",
            "Cache-Control": "no-store",
        },
    )
