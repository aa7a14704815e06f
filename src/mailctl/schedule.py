"""Pure schedule arithmetic for mailings: occurrences, next runs and coalescing.

Every datetime argument must be timezone-aware (naive ones raise ValueError);
every datetime returned is in UTC. Wall-clock arithmetic (day, week, month)
happens in the mailing's configured IANA time zone.

Services reach it through a `Clock`, which carries the zone and the test knob, so no domain
signature has to.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:
    from mailctl.config import Settings

__all__ = ["EVERY", "Clock", "due_run", "first_run", "next_run_after", "occurrence"]

EVERY: tuple[str, ...] = ("once", "day", "week", "month")

_STEP = {"day": timedelta(days=1), "week": timedelta(weeks=1)}


def _utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value!r}")
    return value.astimezone(UTC)


def _opt_utc(value: datetime | None, name: str) -> datetime | None:
    return None if value is None else _utc(value, name)


def _zone(tz: str | ZoneInfo) -> ZoneInfo:
    if isinstance(tz, ZoneInfo):
        return tz
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {tz!r}") from exc


def _check(every: str, period_seconds: int | None) -> None:
    if every not in EVERY:
        raise ValueError(f"every must be one of {EVERY}, got {every!r}")
    if period_seconds is not None and period_seconds <= 0:
        raise ValueError(f"period_seconds must be positive, got {period_seconds}")


def _add_months(wall: datetime, months: int) -> datetime:
    index = wall.month - 1 + months
    year, month = wall.year + index // 12, index % 12 + 1
    day = min(wall.day, calendar.monthrange(year, month)[1])
    try:
        return wall.replace(year=year, month=month, day=day)
    except ValueError as exc:  # year outside 1..9999
        raise OverflowError(f"occurrence year {year} is out of range") from exc


def _nth(
    start: datetime, every: str, n: int, zone: ZoneInfo, period_seconds: int | None
) -> datetime:
    """Occurrence ``n`` for validated inputs; OverflowError past datetime.max."""
    if n == 0:
        return start
    if period_seconds is not None:
        return start + timedelta(seconds=n * period_seconds)
    wall = start.astimezone(zone).replace(tzinfo=None)
    if every == "month":
        # Always offset from start's own day so a clamped month (Jan 31 -> Feb 28)
        # does not drag later months down to the 28th.
        wall = _add_months(wall, n)
    else:
        wall += n * _STEP[every]
    # fold=0 is exactly the spec: a wall time in a spring-forward gap is read with
    # the pre-transition offset, landing one gap later; an ambiguous one resolves
    # to its first instant.
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def _nth_or_none(
    start: datetime, every: str, n: int, zone: ZoneInfo, period_seconds: int | None
) -> datetime | None:
    try:
        return _nth(start, every, n, zone, period_seconds)
    except OverflowError:
        return None  # beyond datetime.max: behaves like "later than anything"


def _estimate(start: datetime, every: str, after: datetime, period_seconds: int | None) -> int:
    if period_seconds is not None:
        return (after - start) // timedelta(seconds=period_seconds) + 1
    if every == "month":
        return (after.year - start.year) * 12 + after.month - start.month
    return (after - start) // _STEP[every]


def _next_after(
    start: datetime,
    end: datetime | None,
    every: str,
    after: datetime,
    zone: ZoneInfo,
    period_seconds: int | None,
) -> datetime | None:
    candidate: datetime | None
    if after < start:
        candidate = start
    elif every == "once":
        candidate = None
    else:
        # The estimate is off by at most a step or two (UTC offsets shift it by
        # hours, month lengths by days), so both loops run only a few times.
        n = max(0, _estimate(start, every, after, period_seconds))
        while n > 0:
            previous = _nth_or_none(start, every, n - 1, zone, period_seconds)
            if previous is not None and previous <= after:
                break
            n -= 1
        while True:
            candidate = _nth_or_none(start, every, n, zone, period_seconds)
            if candidate is None or candidate > after:
                break
            n += 1
    if candidate is None or (end is not None and candidate >= end):
        return None
    return candidate


def occurrence(
    start: datetime,
    every: str,
    n: int,
    *,
    tz: str | ZoneInfo,
    period_seconds: int | None = None,
) -> datetime:
    """Return occurrence ``n`` (0 is ``start``) in UTC.

    Raises ValueError for an unknown ``every``, ``n < 0`` or ``n > 0`` with
    "once", and OverflowError if the occurrence lies beyond year 9999.
    """
    start = _utc(start, "start")
    zone = _zone(tz)
    _check(every, period_seconds)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if every == "once" and n > 0:
        raise ValueError(f"a 'once' mailing has only occurrence 0, got n={n}")
    return _nth(start, every, n, zone, period_seconds)


def first_run(
    start: datetime,
    end: datetime | None,
    every: str,
    *,
    tz: str | ZoneInfo,
    period_seconds: int | None = None,
) -> datetime | None:
    """Return ``start`` if it is before ``end`` (or there is no end), else None."""
    start = _utc(start, "start")
    end = _opt_utc(end, "end")
    _zone(tz)
    _check(every, period_seconds)
    return start if end is None or start < end else None


def next_run_after(
    start: datetime,
    end: datetime | None,
    every: str,
    after: datetime,
    *,
    tz: str | ZoneInfo,
    period_seconds: int | None = None,
) -> datetime | None:
    """Return the first occurrence strictly after ``after`` and before ``end``."""
    start = _utc(start, "start")
    end = _opt_utc(end, "end")
    after = _utc(after, "after")
    zone = _zone(tz)
    _check(every, period_seconds)
    return _next_after(start, end, every, after, zone, period_seconds)


def due_run(
    start: datetime,
    end: datetime | None,
    every: str,
    next_run_at: datetime | None,
    now: datetime,
    *,
    tz: str | ZoneInfo,
    period_seconds: int | None = None,
) -> tuple[datetime | None, datetime | None]:
    """Return ``(run_to_start_now, new_next_run_at)`` given the stored next run.

    A due run starts once however many periods were missed; the missed ones are
    skipped, so the new next run is the first occurrence after ``now``.
    """
    start = _utc(start, "start")
    end = _opt_utc(end, "end")
    next_run_at = _opt_utc(next_run_at, "next_run_at")
    now = _utc(now, "now")
    zone = _zone(tz)
    _check(every, period_seconds)
    if end is not None and now >= end:
        return None, None
    if next_run_at is None or next_run_at > now:
        return None, next_run_at
    return next_run_at, _next_after(start, end, every, now, zone, period_seconds)


@dataclass(frozen=True)
class Clock:
    """What schedule arithmetic needs from the configuration. Both fields are required: a
    caller that forgets the clock gets a TypeError, never a silent UTC clock."""

    tz: str
    # Integration tests shrink every period to this many seconds; None in real use.
    period_seconds: int | None

    @classmethod
    def from_settings(cls, settings: Settings) -> Clock:
        return cls(tz=settings.scheduler.timezone, period_seconds=settings.test_period_seconds)

    def first_run(self, start: datetime, end: datetime | None, every: str) -> datetime | None:
        return first_run(start, end, every, tz=self.tz, period_seconds=self.period_seconds)

    def next_run_after(
        self, start: datetime, end: datetime | None, every: str, after: datetime
    ) -> datetime | None:
        return next_run_after(
            start, end, every, after, tz=self.tz, period_seconds=self.period_seconds
        )

    def due_run(
        self,
        start: datetime,
        end: datetime | None,
        every: str,
        next_run_at: datetime | None,
        now: datetime,
    ) -> tuple[datetime | None, datetime | None]:
        return due_run(
            start, end, every, next_run_at, now, tz=self.tz, period_seconds=self.period_seconds
        )
