"""Outcomes over time as an inline SVG: stacked bars per bucket, drawn on the server, no JS."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from zoneinfo import ZoneInfo

from markupsafe import Markup

Series = Sequence[tuple[str, dict[str, int]]]

# Bootstrap's palette, so the chart matches the badges around it.
COLOURS = {
    "sent": "#198754",
    "failed": "#dc3545",
    "deferred": "#ffc107",
    "unknown": "#6f42c1",
    "skipped": "#adb5bd",
    # Reports that came back after sending (services/bounce_reports.py).
    "bounced": "#fd7e14",
    "complained": "#d63384",
}
OTHER = "#0dcaf0"


@dataclass(frozen=True)
class Layout:
    """The drawing's size in its own units, and its text size: a wide one for a desktop,
    a compact one a phone shows at about its own scale (so 12 units are 12 pixels)."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    font: int
    label_every_px: int


WIDE = Layout(720, 260, 48, 12, 34, 40, 11, 110)
COMPACT = Layout(340, 250, 34, 8, 52, 36, 12, 110)


def localise(series: Series, tz: str) -> list[tuple[str, dict[str, int]]]:
    """Hourly UTC buckets ("YYYY-MM-DD HH:00") shown in the configured zone; days stay as is."""
    zone = ZoneInfo(tz)
    out = []
    for label, counts in series:
        try:
            at = datetime.strptime(label, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
        except ValueError:
            out.append((label, counts))
            continue
        out.append((at.astimezone(zone).strftime("%Y-%m-%d %H:%M"), counts))
    return out


def axis(value: int, most: int = 5) -> tuple[int, int]:
    """(top, step) of a y-axis that reaches `value` in at most `most` steps of 1, 2 or 5 x
    10^k, so every grid line is a whole, round number (0, 2, 4, 6, 8, 10 for 10)."""
    value = max(1, value)
    magnitude = 1
    while True:
        for unit in (1, 2, 5):
            step = unit * magnitude
            if math.ceil(value / step) <= most:
                return step * math.ceil(value / step), step
        magnitude *= 10


def _text(x: float, y: float, text: str, **attrs: str) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{escape(v)}"' for k, v in attrs.items())
    return f'<text x="{x:.1f}" y="{y:.1f}"{extra}>{escape(text)}</text>'


def outcome_svg(
    series: Series, *, title: str = "Delivery attempts over time", compact: bool = False
) -> Markup:
    """The chart as SVG markup; every piece of text in it is escaped here."""
    lay = COMPACT if compact else WIDE
    statuses: list[str] = list(COLOURS)
    for _label, counts in series:
        statuses.extend(s for s in counts if s not in statuses)
    shown = [s for s in statuses if any(c.get(s, 0) for _l, c in series)]
    plot_w, plot_h = lay.width - lay.left - lay.right, lay.height - lay.top - lay.bottom
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {lay.width} {lay.height}" '
        f'width="{lay.width}" height="{lay.height}" role="img" aria-label="{escape(title)}" '
        f'class="outcome-chart" font-family="system-ui, sans-serif" font-size="{lay.font}">',
        f"<title>{escape(title)}</title>",
    ]
    if not series:
        parts.append(_text(lay.width / 2, lay.height / 2, "No attempts yet", text_anchor="middle"))
        parts.append("</svg>")
        return Markup("".join(parts))  # noqa: S704 - every text above went through escape()

    top, step = axis(max(sum(c.values()) for _l, c in series))
    for value in range(0, top + 1, step):
        y = lay.top + plot_h - plot_h * value / top
        parts.append(
            f'<line x1="{lay.left}" y1="{y:.1f}" x2="{lay.width - lay.right}" y2="{y:.1f}" '
            f'stroke="#dee2e6" stroke-width="1"/>'
        )
        parts.append(_text(lay.left - 6, y + 4, str(value), text_anchor="end", fill="#495057"))

    slot = plot_w / len(series)
    bar = max(1.0, min(48.0, slot * 0.7))
    every = max(1, math.ceil(len(series) / max(1, plot_w // lay.label_every_px)))
    for index, (label, counts) in enumerate(series):
        x = lay.left + slot * index + (slot - bar) / 2
        y = lay.top + plot_h
        for status in shown:
            n = counts.get(status, 0)
            if not n:
                continue
            h = plot_h * n / top
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{COLOURS.get(status, OTHER)}">'
                f"<title>{escape(f'{label}: {n} {status}')}</title></rect>"
            )
        if index % every == 0:
            # The year is the same for every bar almost always: a phone leaves it out.
            shown_label = label[5:] if compact and len(label) > 10 else label
            parts.append(
                _text(
                    min(max(x + bar / 2, lay.left + 30), lay.width - lay.right - 30),
                    lay.top + plot_h + 18,
                    shown_label,
                    text_anchor="middle",
                    fill="#212529",
                )
            )

    # Legend along the top, one swatch per status that occurs (two rows on a phone).
    lx, ly = lay.left, 10
    for status in shown:
        width = 24 + 7 * len(status) * lay.font // 11
        if lx + width > lay.width - lay.right:
            lx, ly = lay.left, ly + lay.font + 8
        parts.append(
            f'<rect x="{lx}" y="{ly}" width="12" height="12" fill="{COLOURS.get(status, OTHER)}"/>'
        )
        parts.append(_text(lx + 16, ly + 10, status, fill="#212529"))
        lx += width
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text above went through escape()
