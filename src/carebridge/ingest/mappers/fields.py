"""Typed reads of CSV fields, each raising `RowError` with the column and the rule broken.

Formats follow the feed contract (`ingest/feeds.py`): dates `YYYY-MM-DD`, decimals with a dot, an
empty field for "not present". NPIs are checked with the Luhn formula over the 80840 prefix (CMS,
"NPI check digit"); NCPDP provider ids are 7 digits (NCPDP 201-B1).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date

from carebridge.ingest.records import RowError

Row = Mapping[str, str]
_DECIMAL = re.compile(r"^\d+(\.\d+)?$")
_NPI_PREFIX_LUHN = 24  # the Luhn sum of the card-issuer prefix 80840


def text(row: Row, name: str) -> str:
    value = row.get(name, "").strip()
    if not value:
        raise RowError(f"{name}: required")
    return value


def optional(row: Row, name: str) -> str | None:
    return row.get(name, "").strip() or None


def iso_date(row: Row, name: str) -> str:
    value = text(row, name)
    try:
        date.fromisoformat(value)
    except ValueError:
        raise RowError(f"{name}: not a date (YYYY-MM-DD)") from None
    if len(value) != 10:
        raise RowError(f"{name}: not a date (YYYY-MM-DD)")
    return value


def optional_date(row: Row, name: str) -> str | None:
    return iso_date(row, name) if optional(row, name) else None


def integer(row: Row, name: str) -> int:
    value = text(row, name)
    if not value.isdigit():
        raise RowError(f"{name}: not a whole number")
    return int(value)


def quantity(row: Row, name: str) -> int | float:
    """A positive decimal; whole numbers stay integers in the JSON."""
    value = text(row, name)
    if not _DECIMAL.match(value):
        raise RowError(f"{name}: not a decimal number")
    number = float(value)
    if number <= 0:
        raise RowError(f"{name}: must be greater than zero")
    return int(number) if number.is_integer() else number


def amount(row: Row, name: str) -> float:
    value = text(row, name)
    if not _DECIMAL.match(value):
        raise RowError(f"{name}: not an amount (digits, optional decimals)")
    return float(value)


def pattern(row: Row, name: str, regex: re.Pattern[str], what: str) -> str:
    value = text(row, name)
    if not regex.match(value):
        raise RowError(f"{name}: not {what}")
    return value


def optional_pattern(row: Row, name: str, regex: re.Pattern[str], what: str) -> str | None:
    return pattern(row, name, regex, what) if optional(row, name) else None


def npi(row: Row, name: str) -> str:
    value = text(row, name)
    if not is_valid_npi(value):
        raise RowError(f"{name}: not a valid NPI (10 digits with a Luhn check digit)")
    return value


def is_valid_npi(value: str) -> bool:
    if len(value) != 10 or not value.isdigit() or value[0] not in "12":
        return False
    total = _NPI_PREFIX_LUHN
    for position, char in enumerate(reversed(value[:9])):
        digit = int(char) * (2 if position % 2 == 0 else 1)
        total += digit - 9 if digit > 9 else digit
    return (10 - total % 10) % 10 == int(value[9])


def sex(row: Row, name: str) -> str:
    """M, F or U; NCPDP 305-C5 gender codes 1 (male), 2 (female) and 0 (unknown) are accepted."""
    value = text(row, name).upper()
    code = {"M": "M", "1": "M", "F": "F", "2": "F", "U": "U", "0": "U"}.get(value)
    if code is None:
        raise RowError(f"{name}: not a sex code (M, F, U or NCPDP 1, 2, 0)")
    return code


def check_encoding(fields: tuple[str, ...]) -> None:
    """Fields were read with `surrogateescape`: undecodable bytes show up as lone surrogates."""
    for value in fields:
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise RowError("row: not valid UTF-8") from None
