"""Normalization of search values shared by indexing and querying (pure)."""

from __future__ import annotations

import unicodedata
from typing import Any


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
