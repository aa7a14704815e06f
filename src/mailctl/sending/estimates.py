"""Upper bounds of what one step of a template builds, computed before the step runs.

Each is cheap (a count, a width, a sum of lengths): Python builds `'x'.center(10**9)` or a
replacement of every character in one call that no budget can interrupt, so the size is
checked first and the step refused if it would be over the cap.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from typing import Any

from mailctl.sending.budget import weight

FLAT = (str, bytes, bytearray)
_PRINTF = re.compile(r"%(?:\([^)]*\))?[#0 +\-]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?(.)", re.S)
_SPEC = re.compile(r"(?:.?[<>=^])?[+\- ]?z?#?0?(\d*)[,_]?(?:\.(\d+))?.?", re.S)
_HUGE = 1 << 62


def _number(text: str | None, star: int) -> int:
    if text == "*":
        return star
    if not text:
        return 0
    return int(text) if len(text) < 19 else _HUGE


def printf_size(fmt: str, args: Any, limit: int) -> int:
    """An upper bound of `fmt % args`: every conversion may print the widest argument,
    padded to its width and precision."""
    if isinstance(args, Mapping):
        values = list(args.values())
    elif isinstance(args, tuple):
        values = list(args)
    else:
        values = [args]
    widest = max((weight(v, limit) for v in values), default=0)
    star = max((abs(v) for v in values if type(v) is int), default=0)
    total = len(fmt)
    for match in _PRINTF.finditer(fmt):
        if match.group(3) == "%":
            continue
        total += _number(match.group(1), star) + _number(match.group(2), star) + widest
        if total > limit:
            break
    return total


def spec_size(value: Any, spec: str, limit: int) -> int:
    """An upper bound of `format(value, spec)`."""
    match = _SPEC.fullmatch(spec)
    width = _number(match.group(1), 0) if match else 0
    precision = _number(match.group(2), 0) if match else 0
    return width + precision + weight(value, limit)


def _count(text: Any, part: Any) -> int:
    try:
        return int(text.count(part))
    except TypeError:
        return 0


def _replace_size(text: Any, old: Any, new: Any, count: Any = None) -> int:
    if not isinstance(text, FLAT):
        return 0
    found = _count(text, old)
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    grow = len(new) - len(old) if isinstance(old, FLAT) and isinstance(new, FLAT) else 0
    return len(text) + found * max(grow, 0)


def _width_size(text: Any, width: Any = 0, *_: Any) -> int:
    return max(width if isinstance(width, int) else 0, len(text) if isinstance(text, FLAT) else 0)


def _tabs_size(text: Any, tabsize: Any = 8) -> int:
    size = tabsize if isinstance(tabsize, int) else 0
    return len(text) + _count(text, "\t" if isinstance(text, str) else b"\t") * max(size, 0)


def _translate_size(text: Any, table: Any = None) -> int:
    longest = 1
    if isinstance(table, Mapping):
        longest = max([1, *(len(v) for v in table.values() if isinstance(v, FLAT))])
    return len(text) * longest


def _indent_size(text: Any, width: Any = 4, *_: Any, **__: Any) -> int:
    pad = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
    return len(str(text)) + (_count(str(text), "\n") + 1) * max(pad, 0)


def _wordwrap_size(text: Any, width: Any = 79, *args: Any, **kwargs: Any) -> int:
    wrap = kwargs.get("wrapstring", args[1] if len(args) > 1 else None) or "\n"
    text = str(text)
    lines = len(text) // max(width if isinstance(width, int) else 1, 1) + _count(text, "\n") + 1
    # textwrap works line by line in Python: each line also counts as work of 64 bytes.
    return len(text) + lines * (len(str(wrap)) + 64)


def _title_size(text: Any) -> int:
    return 8 * len(str(text))  # one Python step per word: slow for its size


def striptags(value: Any) -> str:
    """Markup.striptags in linear time: markupsafe's copies the text once per tag."""
    text = str(value.__html__() if hasattr(value, "__html__") else value)
    for opening, closing in (("<!--", "-->"), ("<", ">")):
        pieces, pos = [], 0
        while (start := text.find(opening, pos)) != -1:
            end = text.find(closing, start)
            if end == -1:
                break
            pieces.append(text[pos:start])
            pos = end + len(closing)
        pieces.append(text[pos:])
        text = "".join(pieces)
    return html.unescape(" ".join(text.split()))


def _urlize_size(text: Any, *args: Any, **kwargs: Any) -> int:
    text = str(text)
    extra = sum(len(str(v)) for v in (*args, *kwargs.values()) if isinstance(v, str))
    words = _count(text, " ") + _count(text, "\n") + 1
    return 3 * len(text) + words * (2 * extra + 64)


def _json_size(value: Any, indent: Any = None) -> int:
    pad = indent if isinstance(indent, int) else len(indent) if isinstance(indent, str) else 0
    return weight(value, _HUGE) * (2 + max(pad, 0))


def _batch_size(value: Any, linecount: Any = 1, fill_with: Any = None) -> int:
    return 8 * linecount if fill_with is not None and isinstance(linecount, int) else 0


def _list_size(value: Any) -> int:
    return 9 * len(value) if hasattr(value, "__len__") else 0


STR_METHODS: dict[str, Callable[..., int]] = {
    "center": _width_size,
    "ljust": _width_size,
    "rjust": _width_size,
    "zfill": _width_size,
    "expandtabs": _tabs_size,
    "replace": _replace_size,
    "translate": _translate_size,
}

FILTERS: dict[str, Callable[..., int]] = {
    "center": _width_size,
    "title": _title_size,
    "indent": _indent_size,
    "replace": _replace_size,
    "wordwrap": _wordwrap_size,
    "urlize": _urlize_size,
    "tojson": _json_size,
    "pprint": lambda value, *a, **k: 4 * weight(value, _HUGE),
    "format": lambda value, *args, **kwargs: printf_size(str(value), kwargs or args, _HUGE),
    "batch": _batch_size,
    "list": _list_size,
}
