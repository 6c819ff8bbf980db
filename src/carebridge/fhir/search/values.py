"""Normalization of search values shared by indexing and querying (pure)."""

from __future__ import annotations

import math
import re
import unicodedata
from decimal import Decimal
from typing import Any

SEARCH_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
# R4 datatypes.html#decimal: the lexical form of a decimal (no NaN, Infinity, `+`, spaces, `_`)
_DECIMAL = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_PRECISION_LIMIT = 400


def normalize_string(value: str) -> str:
    """Case- and accent-insensitive form used by FHIR string search (R4 search.html#string)."""
    decomposed = unicodedata.normalize("NFKD", value)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.casefold().split())


def next_prefix(value: str) -> str:
    """The smallest string greater than every string that starts with `value`.

    `starts with` becomes the index-friendly range `value <= x < next_prefix(value)`.
    """
    if not value:
        return "\U0010ffff"
    return value[:-1] + chr(ord(value[-1]) + 1)


def split_unescaped(text: str, separator: str) -> list[str]:
    """Split on `separator` where it is not escaped by `\\` (R4 search.html#escaping).

    Escapes are kept in the parts (`\\,` stays `\\,`), so a part can be split again on another
    separator (`,` then `|` or `$`) before `unescape` turns it into the literal value.
    """
    parts: list[str] = []
    current: list[str] = []
    chars = iter(text)
    for char in chars:
        if char == "\\":
            current.append(char + next(chars, ""))
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def unescape(text: str) -> str:
    """The literal value of an escaped search value: `\\$` `\\,` `\\|` `\\\\` lose their `\\`."""
    if "\\" not in text:
        return text
    out: list[str] = []
    chars = iter(text)
    for char in chars:
        out.append(next(chars, "") if char == "\\" else char)
    return "".join(out)


def split_prefix(value: str) -> tuple[str, str]:
    """The comparison prefix of a date, number or quantity value and the rest (R4
    search.html#prefix); `eq` when there is none."""
    if value[:2] in SEARCH_PREFIXES and len(value) > 2 and not value[2].isalpha():
        return value[:2], value[2:]
    return "eq", value


def number_range(text: str) -> tuple[float, float, float]:
    """A number or quantity search value (R4 search.html#number: a decimal) and the implicit
    range of its precision, as the floats the index compares with: `100` is 100 in [99.5, 100.5).

    Raises ValueError for anything but an R4 decimal (NaN and the infinities are not decimals)
    and for a decimal whose value or range is beyond what a float can hold (`1e999`): such a
    comparison would silently match everything or nothing.
    """
    if not _DECIMAL.fullmatch(text):
        raise ValueError(f"{text!r} is not a decimal number")
    number = Decimal(text)
    if not math.isfinite(float(number)):  # before any arithmetic, which could overflow
        raise ValueError(f"{text!r} is beyond the range of searchable numbers (about 1.8e308)")
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)  # a finite Decimal's exponent
    # A precision finer than 1e-400 adds nothing a float can hold; a coarser one than 1e400
    # makes the range infinite (refused below).
    half = Decimal(5).scaleb(min(max(exponent, -_PRECISION_LIMIT), _PRECISION_LIMIT) - 1)
    bounds = (float(number), float(number - half), float(number + half))
    if not all(math.isfinite(b) for b in bounds):
        raise ValueError(f"the precision of {text!r} makes its range infinite")
    return bounds


def parse_reference(reference: str) -> tuple[str | None, str | None, str | None]:
    """Split a Reference.reference into (type, id, url).

    Relative `Type/id[/_history/v]` gives type and id. Absolute URLs, `urn:` and canonical URLs are
    kept as `url` (plus type/id when the URL ends in `Type/id`), contained `#id` gives nothing.
    """
    if not reference or reference.startswith("#"):
        return None, None, None
    if reference.startswith(("urn:", "http://", "https://")):
        rtype, rid = _tail_type_id(reference)
        return rtype, rid, reference
    parts = reference.split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) == 2 and parts[0][:1].isupper():
        return parts[0], parts[1], None
    return None, None, reference


def local_reference(reference: Any) -> tuple[str, str] | None:
    """("Type", "id") of a relative reference (a Reference or its `reference` string), else None:
    absolute URLs, `urn:` and contained references name no local resource."""
    if isinstance(reference, dict):
        reference = reference.get("reference")
    if not isinstance(reference, str):
        return None
    rtype, rid, url = parse_reference(reference)
    return (rtype, rid) if rtype and rid and url is None else None


def _tail_type_id(url: str) -> tuple[str | None, str | None]:
    parts = url.split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) >= 2 and parts[-2][:1].isupper():
        return parts[-2], parts[-1]
    return None, None
