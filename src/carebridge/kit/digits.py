"""Whole numbers written by clients (query parameters, version ids, ETags), read safely.

`str.isdigit` accepts digits `int` refuses (`²`), and `int` refuses more than 4,300 digits
(Python's integer string conversion limit): either would escape as a 500. These read ASCII
digits only and refuse a value too long for its bound before converting it.
"""

from __future__ import annotations

from carebridge.kit.errors import InvalidRequestError

# versions are counters: a weak ETag's version has fewer than 20 digits
ETAG_VERSION_MAX = 10**19 - 1


def ascii_digits(text: str) -> bool:
    """`text` is one or more ASCII digits 0-9."""
    return text.isascii() and text.isdigit()


def ascii_int(text: str, maximum: int) -> int | None:
    """`text` as an int when it is ASCII digits whose value is at most `maximum`; else None."""
    significant = text.lstrip("0")
    if not ascii_digits(text) or len(significant) > len(str(maximum)):
        return None
    value = int(significant or "0")  # not `text`: leading zeros count towards int's limit
    return value if value <= maximum else None


def etag_version(value: str) -> int | None:
    """The version of an ETag `W/"3"` (or `"3"`, or `3`: R4 http.html#versioning), None when
    `value` is not one."""
    return ascii_int(value.removeprefix("W/").strip('"'), ETAG_VERSION_MAX)


def required_etag_version(value: str) -> int:
    """The version an If-Match value names (an HTTP header, a transaction entry's
    `request.ifMatch`); 400 when it is not a version ETag."""
    version = etag_version(value)
    if version is None:
        raise InvalidRequestError(f'If-Match {value[:40]!r} is not a version ETag like W/"3"')
    return version
