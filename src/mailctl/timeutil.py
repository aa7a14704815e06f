"""Times in: ISO 8601, `YYYY-MM-DD HH:MM`, `now`, `+2h`. Times out: the configured zone."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from mailctl.errors import Invalid

_RELATIVE = re.compile(r"^\+\s*(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_when(text: str, tz: str, *, now: datetime | None = None) -> datetime:
    """Parse a user's time into aware UTC; naive times are in the configured zone."""
    now = now or datetime.now(UTC)
    value = text.strip().lower()
    if value == "now":
        return now
    match = _RELATIVE.match(value)
    if match:
        return now + timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise Invalid(
            f"cannot read time {text!r}: use ISO 8601, 'YYYY-MM-DD HH:MM', 'now' or '+2h'"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(tz))
    return parsed.astimezone(UTC)


def to_local(value: datetime, tz: str) -> datetime:
    return value.astimezone(ZoneInfo(tz))


def fmt(value: datetime | None, tz: str) -> str:
    if value is None:
        return ""
    return to_local(value, tz).strftime("%Y-%m-%d %H:%M %Z")
