"""The one place that reads the wall clock, so that everything else can take time as a parameter."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime


def utc_now() -> datetime:
    """Current time, timezone-aware UTC."""
    return datetime.now(UTC)


def today() -> date:
    """Current UTC calendar date."""
    return utc_now().date()


def minute_of(at: datetime) -> datetime:
    """`at` without its seconds. Asked several times per request (access decisions are made to
    the minute): an `at` already on the minute is returned as it is, since `replace` on an
    aware datetime costs about 1.4 µs."""
    if at.second == 0 and at.microsecond == 0:
        return at
    return at.replace(second=0, microsecond=0)


_minute: tuple[int, datetime] = (-1, datetime.min.replace(tzinfo=UTC))  # (minute number, start)


def current_minute() -> datetime:
    """`minute_of(utc_now())`, asked on every request by a user (access decisions are made to
    the minute): the minute's datetime is made once per minute and shared (0.3 µs instead of
    about 1.7 µs). The same clock as `utc_now`: `datetime.now` reads `time.time`."""
    global _minute
    number = int(time.time() // 60)
    cached = _minute  # one read: another thread may replace it (a tuple, swapped whole)
    if cached[0] == number:
        return cached[1]
    start = datetime.fromtimestamp(number * 60, UTC)
    _minute = (number, start)
    return start
