from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailctl import schedule
from mailctl.schedule import (
    EVERY,
    due_run,
    first_run,
    next_run_after,
    occurrence,
)

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"
# Zones with 60- and 30-minute DST, midnight transitions, odd offsets and none.
ZONES = (
    BERLIN,
    NEW_YORK,
    "UTC",
    "Australia/Lord_Howe",
    "America/Sao_Paulo",
    "Asia/Kathmandu",
    "Europe/London",
)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


def local(
    tz: str, year: int, month: int, day: int, hour: int = 0, minute: int = 0, *, fold: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(tz), fold=fold)


def wall(moment: datetime, tz: str) -> datetime:
    return moment.astimezone(ZoneInfo(tz)).replace(tzinfo=None)


def wall_exists(naive: datetime, tz: str) -> bool:
    aware = naive.replace(tzinfo=ZoneInfo(tz))
    return aware.astimezone(UTC).astimezone(ZoneInfo(tz)).replace(tzinfo=None) == naive


def gap_at(naive: datetime, tz: str) -> timedelta:
    """Length of the spring-forward gap containing the nonexistent wall time ``naive``."""
    before = naive.replace(tzinfo=ZoneInfo(tz), fold=0).utcoffset()
    after = naive.replace(tzinfo=ZoneInfo(tz), fold=1).utcoffset()
    assert before is not None
    assert after is not None
    return after - before


def brute_next(
    start: datetime,
    end: datetime | None,
    every: str,
    after: datetime,
    tz: str,
    period_seconds: int | None = None,
) -> datetime | None:
    """Reference answer by walking occurrences from 0."""
    n = 0
    while True:
        if every == "once" and n > 0:
            return None
        candidate = occurrence(start, every, n, tz=tz, period_seconds=period_seconds)
        if candidate > after:
            return candidate if end is None or candidate < end else None
        n += 1


utc_datetimes = st.datetimes(
    min_value=datetime(1975, 1, 1),
    max_value=datetime(2060, 1, 1),
    timezones=st.just(UTC),
)
zones = st.sampled_from(ZONES)
periodic = st.sampled_from(("day", "week", "month"))


# --- occurrence: month ends and leap years ---------------------------------


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        # 31st through February in a non-leap and a leap year; never chained.
        (utc(2023, 1, 31, 9), 1, utc(2023, 2, 28, 9)),
        (utc(2023, 1, 31, 9), 2, utc(2023, 3, 31, 9)),
        (utc(2023, 1, 31, 9), 3, utc(2023, 4, 30, 9)),
        (utc(2023, 1, 31, 9), 4, utc(2023, 5, 31, 9)),
        (utc(2023, 1, 31, 9), 11, utc(2023, 12, 31, 9)),
        (utc(2023, 1, 31, 9), 13, utc(2024, 2, 29, 9)),
        (utc(2024, 1, 31, 9), 1, utc(2024, 2, 29, 9)),
        (utc(2024, 1, 31, 9), 2, utc(2024, 3, 31, 9)),
        (utc(2024, 1, 31, 9), 13, utc(2025, 2, 28, 9)),
        # 30th and 29th clamp only in February.
        (utc(2023, 1, 30, 9), 1, utc(2023, 2, 28, 9)),
        (utc(2024, 1, 30, 9), 1, utc(2024, 2, 29, 9)),
        (utc(2023, 1, 30, 9), 2, utc(2023, 3, 30, 9)),
        (utc(2023, 1, 29, 9), 1, utc(2023, 2, 28, 9)),
        (utc(2023, 1, 29, 9), 13, utc(2024, 2, 29, 9)),
        # Starting on Feb 29: the 29th everywhere except non-leap Februaries.
        (utc(2024, 2, 29, 9), 1, utc(2024, 3, 29, 9)),
        (utc(2024, 2, 29, 9), 12, utc(2025, 2, 28, 9)),
        (utc(2024, 2, 29, 9), 13, utc(2025, 3, 29, 9)),
        (utc(2024, 2, 29, 9), 48, utc(2028, 2, 29, 9)),
        # 1900 is not a leap year, 2000 is.
        (utc(1899, 12, 31), 2, utc(1900, 2, 28)),
        (utc(1999, 12, 31), 2, utc(2000, 2, 29)),
        # Year rollover.
        (utc(2023, 11, 15, 12), 2, utc(2024, 1, 15, 12)),
        (utc(2023, 12, 31, 12), 12, utc(2024, 12, 31, 12)),
    ],
)
def test_month_clamps_to_month_end_and_recovers(
    start: datetime, n: int, expected: datetime
) -> None:
    assert occurrence(start, "month", n, tz="UTC") == expected


@pytest.mark.parametrize(
    ("tz", "start", "n", "expected"),
    [
        # 09:00 Berlin on the 31st: Feb clamps, 31 March is already CEST.
        (BERLIN, utc(2024, 1, 31, 8), 1, utc(2024, 2, 29, 8)),
        (BERLIN, utc(2024, 1, 31, 8), 2, utc(2024, 3, 31, 7)),
        (BERLIN, utc(2024, 1, 31, 8), 3, utc(2024, 4, 30, 7)),
        (BERLIN, utc(2024, 1, 31, 8), 13, utc(2025, 2, 28, 8)),
        # 23:30 UTC on Jan 31 is Feb 1 in Berlin: months step from the local date.
        (BERLIN, utc(2024, 1, 31, 23, 30), 1, utc(2024, 2, 29, 23, 30)),
        (BERLIN, utc(2024, 1, 31, 23, 30), 2, utc(2024, 3, 31, 22, 30)),
        # 23:00 New York on Jan 31 is Feb 1 in UTC.
        (NEW_YORK, utc(2024, 2, 1, 4), 1, utc(2024, 3, 1, 4)),
        (NEW_YORK, utc(2024, 2, 1, 4), 2, utc(2024, 4, 1, 3)),
    ],
)
def test_month_uses_local_date_and_time(
    tz: str, start: datetime, n: int, expected: datetime
) -> None:
    assert occurrence(start, "month", n, tz=tz) == expected


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        (utc(2024, 2, 28, 12), 1, utc(2024, 2, 29, 12)),
        (utc(2024, 2, 28, 12), 2, utc(2024, 3, 1, 12)),
        (utc(2023, 2, 28, 12), 1, utc(2023, 3, 1, 12)),
        (utc(2023, 12, 31, 12), 1, utc(2024, 1, 1, 12)),
        (utc(2024, 1, 1), 366, utc(2025, 1, 1)),
        (utc(2023, 1, 1), 365, utc(2024, 1, 1)),
    ],
)
def test_day_crosses_leap_days_and_years(start: datetime, n: int, expected: datetime) -> None:
    assert occurrence(start, "day", n, tz="UTC") == expected


# --- occurrence: DST in Berlin and New York --------------------------------


@pytest.mark.parametrize(
    ("tz", "every", "start", "n", "expected"),
    [
        # Berlin spring forward 2024-03-31 02:00 CET -> 03:00 CEST.
        (BERLIN, "day", local(BERLIN, 2024, 3, 29, 8), 2, local(BERLIN, 2024, 3, 31, 8)),
        (BERLIN, "day", local(BERLIN, 2024, 3, 30, 2, 30), 1, utc(2024, 3, 31, 1, 30)),
        (BERLIN, "day", local(BERLIN, 2024, 3, 30, 2, 30), 2, utc(2024, 4, 1, 0, 30)),
        (BERLIN, "week", local(BERLIN, 2024, 3, 24, 2, 30), 1, utc(2024, 3, 31, 1, 30)),
        (BERLIN, "week", local(BERLIN, 2024, 3, 24, 2, 30), 2, utc(2024, 4, 7, 0, 30)),
        # Berlin fall back 2024-10-27 03:00 CEST -> 02:00 CET; 02:30 happens twice.
        (BERLIN, "day", local(BERLIN, 2024, 10, 26, 8), 2, local(BERLIN, 2024, 10, 28, 8)),
        (BERLIN, "day", local(BERLIN, 2024, 10, 26, 2, 30), 1, utc(2024, 10, 27, 0, 30)),
        (BERLIN, "day", local(BERLIN, 2024, 10, 26, 2, 30), 2, utc(2024, 10, 28, 1, 30)),
        (BERLIN, "week", local(BERLIN, 2024, 10, 20, 2, 30), 1, utc(2024, 10, 27, 0, 30)),
        (BERLIN, "week", local(BERLIN, 2024, 10, 20, 2, 30), 2, utc(2024, 11, 3, 1, 30)),
        # New York spring forward 2024-03-10 02:00 EST -> 03:00 EDT.
        (NEW_YORK, "day", local(NEW_YORK, 2024, 3, 8, 9), 3, utc(2024, 3, 11, 13)),
        (NEW_YORK, "day", local(NEW_YORK, 2024, 3, 9, 2, 30), 1, utc(2024, 3, 10, 7, 30)),
        (NEW_YORK, "week", local(NEW_YORK, 2024, 3, 3, 2, 30), 1, utc(2024, 3, 10, 7, 30)),
        (NEW_YORK, "week", local(NEW_YORK, 2024, 3, 3, 9), 1, utc(2024, 3, 10, 13)),
        # New York fall back 2024-11-03 02:00 EDT -> 01:00 EST; 01:30 twice.
        (NEW_YORK, "day", local(NEW_YORK, 2024, 11, 2, 1, 30), 1, utc(2024, 11, 3, 5, 30)),
        (NEW_YORK, "day", local(NEW_YORK, 2024, 11, 2, 1, 30), 2, utc(2024, 11, 4, 6, 30)),
        (NEW_YORK, "week", local(NEW_YORK, 2024, 10, 27, 1, 30), 1, utc(2024, 11, 3, 5, 30)),
        (NEW_YORK, "week", local(NEW_YORK, 2024, 10, 27, 12), 1, utc(2024, 11, 3, 17)),
    ],
)
def test_dst_keeps_wall_time_shifts_gaps_and_takes_first_ambiguous(
    tz: str, every: str, start: datetime, n: int, expected: datetime
) -> None:
    result = occurrence(start.astimezone(UTC), every, n, tz=tz)
    assert result == expected
    assert result.tzinfo is UTC


def test_gap_wall_time_is_shifted_forward_by_the_gap() -> None:
    start = local(BERLIN, 2024, 3, 30, 2, 30).astimezone(UTC)
    result = occurrence(start, "day", 1, tz=BERLIN)
    assert wall(result, BERLIN) == datetime(2024, 3, 31, 3, 30)


def test_ambiguous_wall_time_uses_first_instant() -> None:
    start = local(BERLIN, 2024, 10, 26, 2, 30).astimezone(UTC)
    result = occurrence(start, "day", 1, tz=BERLIN).astimezone(ZoneInfo(BERLIN))
    assert result.replace(tzinfo=None) == datetime(2024, 10, 27, 2, 30)
    assert result.fold == 0
    assert result.utcoffset() == timedelta(hours=2)


def test_start_in_second_ambiguous_instant_is_occurrence_zero() -> None:
    start = local(BERLIN, 2024, 10, 27, 2, 30, fold=1).astimezone(UTC)
    assert start == utc(2024, 10, 27, 1, 30)
    assert occurrence(start, "day", 0, tz=BERLIN) == start
    assert occurrence(start, "day", 1, tz=BERLIN) == utc(2024, 10, 28, 1, 30)


# --- occurrence: once, period_seconds, inputs -------------------------------


def test_once_has_only_occurrence_zero() -> None:
    start = utc(2024, 5, 1, 10)
    assert occurrence(start, "once", 0, tz=BERLIN) == start
    with pytest.raises(ValueError, match="once"):
        occurrence(start, "once", 1, tz=BERLIN)
    with pytest.raises(ValueError, match="once"):
        occurrence(start, "once", 1, tz=BERLIN, period_seconds=60)


@pytest.mark.parametrize("every", ["day", "week", "month"])
def test_period_seconds_overrides_every_with_plain_utc_steps(every: str) -> None:
    # Across the Berlin spring-forward night: plain UTC arithmetic, no wall clock.
    start = utc(2024, 3, 30, 23)
    assert occurrence(start, every, 0, tz=BERLIN, period_seconds=90) == start
    assert occurrence(start, every, 3, tz=BERLIN, period_seconds=90) == start + (
        timedelta(seconds=270)
    )
    assert occurrence(start, every, 4, tz=BERLIN, period_seconds=3600) == utc(2024, 3, 31, 3)


def test_tz_may_be_string_or_zoneinfo() -> None:
    start = utc(2024, 3, 30, 1, 30)
    assert occurrence(start, "day", 1, tz=ZoneInfo(BERLIN)) == occurrence(
        start, "day", 1, tz=BERLIN
    )


def test_aware_non_utc_input_is_normalised_to_utc() -> None:
    start = local(NEW_YORK, 2024, 1, 1, 9)
    result = occurrence(start, "day", 0, tz=NEW_YORK)
    assert result == utc(2024, 1, 1, 14)
    assert result.tzinfo is UTC


@pytest.mark.parametrize(
    ("start", "every", "n", "tz", "period_seconds", "message"),
    [
        (datetime(2024, 1, 1), "day", 1, BERLIN, None, "naive"),
        (utc(2024, 1, 1), "year", 1, BERLIN, None, "every"),
        (utc(2024, 1, 1), "daily", 1, BERLIN, None, "every"),
        (utc(2024, 1, 1), "day", -1, BERLIN, None, "n must be"),
        (utc(2024, 1, 1), "day", 1, "Mars/Olympus_Mons", None, "time zone"),
        (utc(2024, 1, 1), "day", 1, "", None, "time zone"),
        (utc(2024, 1, 1), "day", 1, "../etc/passwd", None, "time zone"),
        (utc(2024, 1, 1), "day", 1, BERLIN, 0, "period_seconds"),
        (utc(2024, 1, 1), "day", 1, BERLIN, -5, "period_seconds"),
    ],
)
def test_occurrence_rejects_bad_input(
    start: datetime, every: str, n: int, tz: str, period_seconds: int | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        occurrence(start, every, n, tz=tz, period_seconds=period_seconds)


def test_naive_datetimes_rejected_everywhere() -> None:
    aware, naive = utc(2024, 1, 1), datetime(2024, 1, 1)
    with pytest.raises(ValueError, match="end"):
        first_run(aware, naive, "day", tz=BERLIN)
    with pytest.raises(ValueError, match="after"):
        next_run_after(aware, None, "day", naive, tz=BERLIN)
    with pytest.raises(ValueError, match="next_run_at"):
        due_run(aware, None, "day", naive, aware, tz=BERLIN)
    with pytest.raises(ValueError, match="now"):
        due_run(aware, None, "day", aware, naive, tz=BERLIN)


def test_occurrence_beyond_year_9999_overflows() -> None:
    with pytest.raises(OverflowError):
        occurrence(utc(9999, 6, 1), "month", 12, tz="UTC")
    with pytest.raises(OverflowError):
        occurrence(utc(9999, 12, 1), "day", 31, tz="UTC")


def test_every_constant() -> None:
    assert EVERY == ("once", "day", "week", "month")


# --- first_run ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("end", "expected"),
    [
        (None, utc(2024, 1, 1, 9)),
        (utc(2024, 1, 1, 9, 0, 1), utc(2024, 1, 1, 9)),
        (utc(2024, 1, 1, 9), None),
        (utc(2023, 12, 31), None),
    ],
)
@pytest.mark.parametrize("every", EVERY)
def test_first_run(every: str, end: datetime | None, expected: datetime | None) -> None:
    assert first_run(utc(2024, 1, 1, 9), end, every, tz=BERLIN) == expected


# --- next_run_after ----------------------------------------------------------


@pytest.mark.parametrize(
    ("every", "end", "after", "expected"),
    [
        ("day", None, utc(2023, 12, 1), utc(2024, 1, 1, 9)),
        ("day", None, utc(2024, 1, 1, 9), utc(2024, 1, 2, 9)),
        ("day", None, utc(2024, 1, 1, 8, 59), utc(2024, 1, 1, 9)),
        ("day", None, utc(2024, 1, 1, 9, 0, 0, 1), utc(2024, 1, 2, 9)),
        # An occurrence exactly at end does not run.
        ("day", utc(2024, 1, 3, 9), utc(2024, 1, 1, 9), utc(2024, 1, 2, 9)),
        ("day", utc(2024, 1, 3, 9), utc(2024, 1, 2, 9), None),
        ("day", utc(2024, 1, 3, 9, 0, 1), utc(2024, 1, 2, 9), utc(2024, 1, 3, 9)),
        ("week", None, utc(2024, 1, 3), utc(2024, 1, 8, 9)),
        ("week", utc(2024, 1, 8, 9), utc(2024, 1, 3), None),
        ("month", None, utc(2024, 1, 1, 9), utc(2024, 2, 1, 9)),
        ("month", None, utc(2024, 2, 15), utc(2024, 3, 1, 9)),
        ("once", None, utc(2023, 12, 31), utc(2024, 1, 1, 9)),
        ("once", utc(2024, 1, 1, 9), utc(2023, 12, 31), None),
        ("once", None, utc(2024, 1, 1, 9), None),
        ("once", None, utc(2030, 1, 1), None),
    ],
)
def test_next_run_after(
    every: str, end: datetime | None, after: datetime, expected: datetime | None
) -> None:
    start = utc(2024, 1, 1, 9)
    assert next_run_after(start, end, every, after, tz="UTC") == expected


def test_next_run_after_month_from_clamped_31st() -> None:
    start = utc(2023, 1, 31, 9)
    assert next_run_after(start, None, "month", utc(2023, 2, 28, 9), tz="UTC") == utc(
        2023, 3, 31, 9
    )
    assert next_run_after(start, None, "month", utc(2023, 2, 1), tz="UTC") == utc(2023, 2, 28, 9)


def test_next_run_after_across_dst_gap_and_fold() -> None:
    start = local(BERLIN, 2024, 3, 1, 2, 30).astimezone(UTC)
    # 31 March 02:30 does not exist: the run is at 03:30 CEST (01:30 UTC).
    after = utc(2024, 3, 30, 3)
    assert next_run_after(start, None, "day", after, tz=BERLIN) == utc(2024, 3, 31, 1, 30)
    start = local(BERLIN, 2024, 10, 1, 2, 30).astimezone(UTC)
    # 27 October 02:30 happens twice; only the first (00:30 UTC) is a run.
    after = utc(2024, 10, 27, 0, 30)
    assert next_run_after(start, None, "day", after, tz=BERLIN) == utc(2024, 10, 28, 1, 30)


def test_next_run_after_with_period_seconds() -> None:
    start = utc(2024, 1, 1)
    assert next_run_after(
        start, None, "month", utc(2024, 1, 1, 0, 1), tz=BERLIN, period_seconds=60
    ) == utc(2024, 1, 1, 0, 2)
    assert next_run_after(
        start, None, "day", utc(2024, 1, 1, 0, 1, 30), tz=BERLIN, period_seconds=60
    ) == utc(2024, 1, 1, 0, 2)
    assert (
        next_run_after(
            start,
            utc(2024, 1, 1, 0, 2),
            "day",
            utc(2024, 1, 1, 0, 1),
            tz=BERLIN,
            period_seconds=60,
        )
        is None
    )
    assert next_run_after(start, None, "once", start, tz=BERLIN, period_seconds=60) is None


def test_next_run_after_near_datetime_max_is_none() -> None:
    after = datetime.max.replace(tzinfo=UTC) - timedelta(hours=1)
    assert next_run_after(utc(2024, 1, 1), None, "day", after, tz="UTC") is None
    assert next_run_after(utc(2024, 1, 1), None, "month", after, tz=BERLIN) is None


@pytest.mark.parametrize(
    ("every", "period_seconds", "after", "expected"),
    [
        ("day", None, utc(2025, 6, 15, 12), utc(2025, 6, 16, 7)),
        ("day", None, utc(2025, 12, 24, 8, 30), utc(2025, 12, 25, 8)),
        ("week", None, utc(2025, 6, 15, 12), utc(2025, 6, 20, 7)),
        ("month", None, utc(2025, 6, 15, 12), utc(2025, 7, 6, 7)),
        ("day", 60, utc(2025, 6, 15, 12, 0, 30), utc(2025, 6, 15, 12, 1)),
        ("day", 1, utc(2025, 6, 15, 12, 0, 0, 500), utc(2025, 6, 15, 12, 0, 1)),
    ],
)
def test_next_run_after_far_future_is_efficient(
    monkeypatch: pytest.MonkeyPatch,
    every: str,
    period_seconds: int | None,
    after: datetime,
    expected: datetime,
) -> None:
    # Friday 1995-01-06 09:00 Berlin, ~30 years (11 000+ daily periods) earlier.
    start = utc(1995, 1, 6, 8)
    calls = 0
    real_nth = schedule._nth

    def counting_nth(
        start: datetime, every: str, n: int, zone: ZoneInfo, period_seconds: int | None
    ) -> datetime:
        nonlocal calls
        calls += 1
        return real_nth(start, every, n, zone, period_seconds)

    monkeypatch.setattr(schedule, "_nth", counting_nth)
    result = next_run_after(start, None, every, after, tz=BERLIN, period_seconds=period_seconds)
    assert result == expected
    assert calls <= 4


# --- due_run -----------------------------------------------------------------

DAILY = utc(2020, 1, 1, 9)


def test_due_run_not_yet_due_is_unchanged() -> None:
    stored = utc(2024, 3, 16, 9)
    assert due_run(DAILY, None, "day", stored, utc(2024, 3, 16, 8), tz="UTC") == (
        None,
        stored,
    )


def test_due_run_without_next_run_does_nothing() -> None:
    assert due_run(DAILY, None, "day", None, utc(2024, 3, 16), tz="UTC") == (None, None)


def test_due_run_exactly_at_next_run() -> None:
    stored = utc(2024, 3, 16, 9)
    assert due_run(DAILY, None, "day", stored, stored, tz="UTC") == (
        stored,
        utc(2024, 3, 17, 9),
    )


def test_due_run_coalesces_long_outage_into_one_run() -> None:
    stored = utc(2024, 1, 1, 9)
    now = utc(2024, 3, 15, 12)
    run, following = due_run(DAILY, None, "day", stored, now, tz="UTC")
    assert run == stored
    assert following == utc(2024, 3, 16, 9)
    assert following is not None
    assert following > now
    # The following call at the new next run is a single normal run again.
    assert due_run(DAILY, None, "day", following, following, tz="UTC") == (
        following,
        utc(2024, 3, 17, 9),
    )


def test_due_run_outage_then_end_before_next_occurrence() -> None:
    stored = utc(2024, 1, 1, 9)
    end = utc(2024, 3, 16, 9)
    assert due_run(DAILY, end, "day", stored, utc(2024, 3, 15, 12), tz="UTC") == (
        stored,
        None,
    )


@pytest.mark.parametrize("now", [utc(2024, 3, 16, 9), utc(2024, 5, 1)])
def test_due_run_at_or_after_end_starts_nothing(now: datetime) -> None:
    end = utc(2024, 3, 16, 9)
    assert due_run(DAILY, end, "day", utc(2024, 1, 1, 9), now, tz="UTC") == (
        None,
        None,
    )
    assert due_run(DAILY, end, "day", utc(2024, 6, 1, 9), now, tz="UTC") == (
        None,
        None,
    )


def test_due_run_once() -> None:
    start = utc(2024, 3, 1, 9)
    assert due_run(start, None, "once", start, utc(2024, 3, 2), tz=BERLIN) == (
        start,
        None,
    )


def test_due_run_with_period_seconds() -> None:
    start = utc(2024, 3, 1, 9)
    now = start + timedelta(seconds=125)
    assert due_run(start, None, "month", start, now, tz=BERLIN, period_seconds=60) == (
        start,
        start + timedelta(seconds=180),
    )


# --- properties ----------------------------------------------------------------


@settings(deadline=None)
@given(
    start=utc_datetimes,
    tz=zones,
    every=periodic,
    n=st.integers(min_value=0, max_value=1500),
    period_seconds=st.none() | st.integers(min_value=1, max_value=10**7),
)
def test_occurrences_strictly_increase(
    start: datetime, tz: str, every: str, n: int, period_seconds: int | None
) -> None:
    this = occurrence(start, every, n, tz=tz, period_seconds=period_seconds)
    following = occurrence(start, every, n + 1, tz=tz, period_seconds=period_seconds)
    assert this.tzinfo is UTC
    assert this < following


@settings(deadline=None)
@given(start=utc_datetimes, tz=zones, n=st.integers(min_value=1, max_value=15000))
def test_daily_keeps_local_wall_time_unless_in_gap(start: datetime, tz: str, n: int) -> None:
    expected = wall(start, tz) + timedelta(days=n)
    result = occurrence(start, "day", n, tz=tz).astimezone(ZoneInfo(tz))
    if wall_exists(expected, tz):
        assert result.replace(tzinfo=None) == expected
        assert result.fold == 0  # the first of two ambiguous instants
    else:
        gap = gap_at(expected, tz)
        assert gap > timedelta(0)
        assert result.replace(tzinfo=None) == expected + gap


@settings(deadline=None)
@given(start=utc_datetimes, tz=zones, n=st.integers(min_value=0, max_value=1200))
def test_monthly_day_clamps_and_is_never_chained(start: datetime, tz: str, n: int) -> None:
    first = wall(start, tz)
    result = wall(occurrence(start, "month", n, tz=tz), tz)
    months = first.year * 12 + first.month - 1 + n
    year, month = divmod(months, 12)
    expected_day = min(first.day, calendar.monthrange(year, month + 1)[1])
    if wall_exists(first.replace(year=year, month=month + 1, day=expected_day), tz):
        assert (result.year, result.month, result.day) == (year, month + 1, expected_day)
        assert result.time() == first.time()


@settings(deadline=None)
@given(
    start=utc_datetimes,
    tz=zones,
    every=st.sampled_from(EVERY),
    k=st.integers(min_value=0, max_value=400),
    offset=st.timedeltas(min_value=timedelta(days=-3), max_value=timedelta(days=3)),
    end_offset=st.none() | st.integers(min_value=0, max_value=5),
    period_seconds=st.none() | st.integers(min_value=1, max_value=10**6),
)
def test_next_run_after_matches_linear_scan(
    start: datetime,
    tz: str,
    every: str,
    k: int,
    offset: timedelta,
    end_offset: int | None,
    period_seconds: int | None,
) -> None:
    if every == "once":
        k = 0
    after = occurrence(start, every, k, tz=tz, period_seconds=period_seconds) + offset
    end = None
    if end_offset is not None:
        end = after + timedelta(hours=end_offset * 12)
    result = next_run_after(start, end, every, after, tz=tz, period_seconds=period_seconds)
    assert result == brute_next(start, end, every, after, tz, period_seconds)
    if result is not None:
        assert result > after
        assert end is None or result < end


@settings(deadline=None)
@given(
    start=utc_datetimes,
    tz=zones,
    every=periodic,
    k=st.integers(min_value=0, max_value=200),
    outage=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=800)),
)
def test_due_run_runs_once_and_skips_missed_periods(
    start: datetime, tz: str, every: str, k: int, outage: timedelta
) -> None:
    stored = occurrence(start, every, k, tz=tz)
    now = stored + outage
    run, following = due_run(start, None, every, stored, now, tz=tz)
    assert run == stored
    # Scan forward from the stored run: the new next run is the first occurrence
    # after now, so every missed one in between is skipped rather than replayed.
    n = k
    while occurrence(start, every, n, tz=tz) <= now:
        n += 1
    assert following == occurrence(start, every, n, tz=tz)
    assert following > now
