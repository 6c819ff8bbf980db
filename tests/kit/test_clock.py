"""kit/clock.py: the wall clock and the minute access decisions are made to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from carebridge.kit.clock import current_minute, minute_of, utc_now


def test_now_is_aware_utc() -> None:
    assert utc_now().utcoffset() == timedelta(0)


def test_a_time_loses_its_seconds_and_keeps_its_zone() -> None:
    plus_one = timezone(timedelta(hours=1))
    at = datetime(2026, 3, 4, 5, 6, 7, 890, tzinfo=plus_one)
    assert minute_of(at) == datetime(2026, 3, 4, 5, 6, tzinfo=plus_one)
    assert minute_of(at).tzinfo is plus_one


def test_a_time_on_the_minute_is_that_time() -> None:
    at = datetime(2026, 3, 4, 5, 6, tzinfo=UTC)
    assert minute_of(at) is at
    assert minute_of(at + timedelta(microseconds=1)) == at


def test_the_current_minute_is_now_without_its_seconds() -> None:
    before = minute_of(utc_now())
    found = current_minute()
    after = minute_of(utc_now())
    assert found in (before, after)
    assert found.tzinfo is UTC
    assert (found.second, found.microsecond) == (0, 0)


def test_the_current_minute_is_made_once_per_minute() -> None:
    first = current_minute()
    second = current_minute()
    assert second is first or second > first  # a new object only when the minute turned
