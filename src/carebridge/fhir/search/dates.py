"""FHIR date/dateTime/instant values as closed time ranges, the basis of date search.

FHIR R4 search (http://hl7.org/fhir/R4/search.html#date) treats every date value as an implicit
range set by its precision: `2024` is the whole year, `2024-03-01` the whole day, a dateTime to the
second that second. Stored and searched values are both turned into [start, end] (inclusive, naive
UTC, microsecond resolution) so the prefixes eq/ne/lt/gt/le/ge/sa/eb/ap compare ranges.
A value without a time zone (dates, and dateTimes that omit it) is read as UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

# Open ends of Periods; kept inside the range both SQLite and PostgreSQL timestamps accept.
LOW = datetime(1, 1, 1)
HIGH = datetime(9999, 12, 31, 23, 59, 59, 999999)
_TICK = timedelta(microseconds=1)

_DATE = re.compile(
    r"^(?P<y>\d{4})(-(?P<m>\d{2})(-(?P<d>\d{2})"
    r"(T(?P<H>\d{2}):(?P<M>\d{2})(:(?P<S>\d{2})(?P<f>\.\d+)?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


class InvalidDateError(ValueError):
    pass


def date_range(text: str) -> tuple[datetime, datetime]:
    """The closed UTC range [start, end] that a FHIR date/dateTime/instant string denotes."""
    match = _DATE.match(text.strip())
    if not match:
        raise InvalidDateError(f"not a FHIR date/dateTime: {text!r}")
    try:
        start, width = _start_and_width(match)
    except ValueError as exc:
        raise InvalidDateError(f"not a valid date: {text!r} ({exc})") from exc
    offset = _offset(match.group("tz"))
    try:
        following = _add(start, width)
    except (OverflowError, ValueError):  # the range runs to the end of year 9999
        return _to_utc(start, offset), HIGH
    end = _to_utc(following, offset)
    return _to_utc(start, offset), end if end in (LOW, HIGH) else end - _TICK


def _to_utc(value: datetime, offset: timedelta) -> datetime:
    """`value` at UTC `offset` as naive UTC, clamped to [LOW, HIGH] at the ends of the calendar."""
    try:
        return value - offset
    except OverflowError:
        return LOW if offset > timedelta(0) else HIGH


def _start_and_width(match: re.Match[str]) -> tuple[datetime, tuple[str, int]]:
    year = int(match["y"])
    if match["m"] is None:
        return datetime(year, 1, 1), ("years", 1)
    month = int(match["m"])
    if match["d"] is None:
        return datetime(year, month, 1), ("months", 1)
    day = int(match["d"])
    if match["H"] is None:
        return datetime(year, month, day), ("days", 1)
    hour, minute = int(match["H"]), int(match["M"])
    if match["S"] is None:
        return datetime(year, month, day, hour, minute), ("minutes", 1)
    second = int(match["S"])
    fraction = match["f"]
    if not fraction:
        return datetime(year, month, day, hour, minute, second), ("seconds", 1)
    digits = fraction[1:7]
    micros = int(digits.ljust(6, "0"))
    return (
        datetime(year, month, day, hour, minute, second, micros),
        ("microseconds", 10 ** (6 - len(digits))),
    )


def _add(start: datetime, width: tuple[str, int]) -> datetime:
    unit, amount = width
    if unit == "years":
        return start.replace(year=start.year + amount)
    if unit == "months":
        month = start.month + amount
        year = start.year + (month - 1) // 12
        return start.replace(year=year, month=(month - 1) % 12 + 1)
    return start + timedelta(**{unit: amount})


def _offset(tz: str | None) -> timedelta:
    if not tz or tz == "Z":
        return timedelta(0)
    sign = 1 if tz[0] == "+" else -1
    hours, minutes = int(tz[1:3]), int(tz[4:6])
    if hours > 14 or minutes > 59:
        raise InvalidDateError(f"not a time zone offset: {tz!r}")
    return sign * timedelta(hours=hours, minutes=minutes)


def to_naive_utc(value: datetime) -> datetime:
    """Aware datetimes become naive UTC; naive ones are taken to be UTC already."""
    if value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def instant_text(value: datetime) -> str:
    """A naive-UTC or aware datetime as a FHIR instant string (millisecond precision, `Z`)."""
    utc = to_naive_utc(value)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
