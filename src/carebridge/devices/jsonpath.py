"""A hand-written subset of JSONPath (RFC 9535) for device templates.

Why a subset written here rather than a library: templates only need fixed locations and "every
element of this list"; the standard library has no JSONPath; a dependency would be added for ~100
lines; and the full language (filters, recursive descent `..`, functions) would let an operator
write a path that silently selects differently shaped things in different payloads. Anything
outside the subset is rejected when the template is loaded, with the position of the problem.

Grammar (whitespace is not allowed):

    path     = "$" segment*
    segment  = "." name | "[" selector "]"
    name     = [A-Za-z_][A-Za-z0-9_-]*
    selector = "*" | integer | 'quoted name' | "quoted name"

`[*]` yields every element of an array, or every member value of an object, in document order.
A negative index counts from the end, as in RFC 9535. `find` returns each match with its
normalized location (e.g. `$.measurements[2]`), which callers use in rejection reasons.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from typing import Any, Final

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_SEGMENT = re.compile(
    r"\.(?P<name>[A-Za-z_][A-Za-z0-9_-]*)"
    r"|\[(?:(?P<star>\*)|(?P<index>-?\d+)|'(?P<sq>(?:[^'\\]|\\.)*)'|\"(?P<dq>(?:[^\"\\]|\\.)*)\")\]"
)
_ESCAPE = re.compile(r"\\(.)")


class Missing(Enum):
    """Marks a path that selects nothing (distinct from a JSON null)."""

    MISSING = "missing"


MISSING: Final = Missing.MISSING


class JsonPathError(ValueError):
    """A path outside the supported subset."""


@dataclass(frozen=True)
class Member:
    name: str


@dataclass(frozen=True)
class Index:
    index: int


@dataclass(frozen=True)
class Wildcard:
    pass


Segment = Member | Index | Wildcard


@dataclass(frozen=True)
class JsonPath:
    text: str
    segments: tuple[Segment, ...]

    @property
    def selects_many(self) -> bool:
        """True when the path can yield several values (it contains `[*]`)."""
        return any(isinstance(s, Wildcard) for s in self.segments)

    def find(self, document: Any) -> list[tuple[str, Any]]:
        """Every (location, value) the path selects, in document order."""
        matches: list[tuple[str, Any]] = [("$", document)]
        for segment in self.segments:
            matches = [hit for loc, value in matches for hit in _step(segment, loc, value)]
        return matches

    def first(self, document: Any) -> Any:
        """The first selected value, or `MISSING` when the path selects nothing."""
        return _first(self.segments, 0, document)


def _first(segments: tuple[Segment, ...], start: int, value: Any) -> Any:
    """`first` without building locations (normalization reads several values per reading)."""
    for position in range(start, len(segments)):
        segment = segments[position]
        if isinstance(segment, Member):
            if not isinstance(value, dict) or segment.name not in value:
                return MISSING
            value = value[segment.name]
        elif isinstance(segment, Index):
            if not isinstance(value, list) or not -len(value) <= segment.index < len(value):
                return MISSING
            value = value[segment.index]
        else:
            items = (
                value
                if isinstance(value, list)
                else (list(value.values()) if isinstance(value, dict) else [])
            )
            for item in items:
                found = _first(segments, position + 1, item)
                if found is not MISSING:
                    return found
            return MISSING
    return value


def _step(segment: Segment, location: str, value: Any) -> list[tuple[str, Any]]:
    if isinstance(segment, Member):
        if isinstance(value, dict) and segment.name in value:
            return [(location + _member_location(segment.name), value[segment.name])]
        return []
    if isinstance(segment, Index):
        if isinstance(value, list) and -len(value) <= segment.index < len(value):
            position = segment.index % len(value)
            return [(f"{location}[{position}]", value[position])]
        return []
    if isinstance(value, list):
        return [(f"{location}[{i}]", item) for i, item in enumerate(value)]
    if isinstance(value, dict):
        return [(location + _member_location(key), item) for key, item in value.items()]
    return []


@lru_cache(maxsize=4096)
def _member_location(name: str) -> str:
    if _IDENTIFIER.fullmatch(name):
        return f".{name}"
    escaped = name.replace("\\", "\\\\").replace("'", "\\'")
    return f"['{escaped}']"


def _segment(match: re.Match[str]) -> Segment:
    if match["name"] is not None:
        return Member(match["name"])
    if match["star"] is not None:
        return Wildcard()
    if match["index"] is not None:
        return Index(int(match["index"]))
    quoted = match["sq"] if match["sq"] is not None else match["dq"]
    return Member(_ESCAPE.sub(r"\1", quoted))


@lru_cache(maxsize=1024)
def parse(text: str) -> JsonPath:
    """Parse a path in the supported subset; cached because templates reuse a few paths."""
    if not text.startswith("$"):
        raise JsonPathError(f"JSON path {text!r} must start with '$'")
    segments: list[Segment] = []
    position = 1
    while position < len(text):
        match = _SEGMENT.match(text, position)
        if match is None:
            raise JsonPathError(
                f"JSON path {text!r}: unsupported syntax at position {position} "
                f"({text[position:]!r}); supported: .name, ['name'], [n], [*]"
            )
        segments.append(_segment(match))
        position = match.end()
    return JsonPath(text, tuple(segments))
