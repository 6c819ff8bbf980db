"""The parsed form of a FHIR search request (pure value objects)."""

from __future__ import annotations

from dataclasses import dataclass, field

from carebridge.fhir.search.parameters import SearchParam


@dataclass(frozen=True)
class Criterion:
    """One search parameter occurrence: its values are OR-ed; criteria are AND-ed.

    `param` is None for the resource-table parameters `_id` and `_lastUpdated` (see `special`).
    """

    resource_type: str
    code: str
    type: str
    modifier: str | None
    values: tuple[str, ...]
    param: SearchParam | None = None
    special: str | None = None
    chain: tuple[Criterion, ...] = ()  # chained parameter: one criterion per target type


@dataclass(frozen=True)
class SortKey:
    code: str
    type: str
    descending: bool
    special: str | None = None


@dataclass(frozen=True)
class Include:
    source_type: str
    param: str
    target_type: str | None
    reverse: bool
    iterate: bool = False


@dataclass(frozen=True)
class SearchQuery:
    resource_types: tuple[str, ...]
    criteria: tuple[Criterion, ...] = ()
    sort: tuple[SortKey, ...] = ()
    count: int = 50
    offset: int = 0
    includes: tuple[Include, ...] = ()
    summary: str | None = None
    elements: tuple[str, ...] = ()
    total: str = "accurate"
    ignored: tuple[str, ...] = field(default=())
