"""Outcomes over time as an inline SVG: stacked bars per bucket, drawn on the server, no JS."""

from __future__ import annotations

import math
from collections.abc import Sequence
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
}
OTHER = "#0dcaf0"
WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 34, 40


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


def _nice_max(value: int) -> int:
    """The smallest 1/2/5 x 10^k at or above value, so grid lines fall on round numbers."""
    if value <= 4:
        return 4
    magnitude = int(10 ** math.floor(math.log10(value)))  # value > 4: a whole power
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude  # pragma: no cover


def _text(x: float, y: float, text: str, **attrs: str) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{escape(v)}"' for k, v in attrs.items())
    return f'<text x="{x:.1f}" y="{y:.1f}"{extra}>{escape(text)}</text>'


def outcome_svg(series: Series, *, title: str = "Delivery attempts over time") -> Markup:
    """The chart as SVG markup; every piece of text in it is escaped here."""
    statuses: list[str] = list(COLOURS)
    for _label, counts in series:
        statuses.extend(s for s in counts if s not in statuses)
    shown = [s for s in statuses if any(c.get(s, 0) for _l, c in series)]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="100%" role="img" aria-label="{escape(title)}" class="outcome-chart" '
        f'font-family="system-ui, sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
    ]
    if not series:
        parts.append(_text(WIDTH / 2, HEIGHT / 2, "No attempts yet", text_anchor="middle"))
        parts.append("</svg>")
        return Markup("".join(parts))  # noqa: S704 - every text above went through escape()

    top = _nice_max(max(sum(c.values()) for _l, c in series))
    # Axis and grid: four steps on round numbers.
    for i in range(5):
        value = top * i // 4
        y = TOP + plot_h - plot_h * i / 4
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" '
            f'stroke="#dee2e6" stroke-width="1"/>'
        )
        parts.append(_text(LEFT - 6, y + 4, str(value), text_anchor="end", fill="#6c757d"))

    slot = plot_w / len(series)
    bar = max(1.0, min(48.0, slot * 0.7))
    every = max(1, math.ceil(len(series) / max(1, plot_w // 110)))
    for index, (label, counts) in enumerate(series):
        x = LEFT + slot * index + (slot - bar) / 2
        y = TOP + plot_h
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
            parts.append(
                _text(x + bar / 2, TOP + plot_h + 16, label, text_anchor="middle", fill="#495057")
            )

    # Legend along the top, one swatch per status that occurs.
    lx = LEFT
    for status in shown:
        parts.append(
            f'<rect x="{lx}" y="10" width="12" height="12" fill="{COLOURS.get(status, OTHER)}"/>'
        )
        parts.append(_text(lx + 16, 20, status))
        lx += 24 + 7 * len(status)
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text above went through escape()
