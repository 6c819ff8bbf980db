"""Value objects that the FHIR store returns and accepts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from carebridge.fhir.search.extract import IndexRows


@dataclass(frozen=True)
class StoredResource:
    pk: int
    res_type: str
    res_id: str
    version: int
    last_updated: datetime
    deleted: bool
    method: str
    content: dict[str, Any] | None

    @property
    def reference(self) -> str:
        return f"{self.res_type}/{self.res_id}"


class Method(StrEnum):
    POST = "POST"
    PUT = "PUT"
    DELETE = "DELETE"


class Outcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    DELETED = "deleted"
    NOT_PRESENT = "not-present"


@dataclass
class WriteOp:
    """One resource write. `if_match` is the version the client believes is current."""

    method: Method
    res_type: str
    res_id: str
    content: dict[str, Any] | None = None
    if_match: int | None = None
    urn: str | None = None
    index: IndexRows | None = None  # precomputed search index rows (bulk loads)
    # Bulk loads: the content as stored for version 1 at `stamped` (meta included), serialized
    # by a worker process so the writer does not rebuild the dict; `content` is then None.
    encoded: bytes | None = None
    stamped: datetime | None = None
    # The search index rows packed for the database to unpack (packed_rows.py), instead of
    # `index`: bulk writes into SQLite.
    packed: dict[str, bytes] | None = None

    def decoded(self) -> WriteOp:
        """The same op with `content` (for the paths that compare or re-version content)."""
        if self.encoded is None:
            return self
        content = orjson.loads(self.encoded)
        return WriteOp(
            self.method, self.res_type, self.res_id, content, self.if_match, self.urn, self.index
        )


@dataclass(frozen=True)
class WriteResult:
    op: WriteOp
    outcome: Outcome
    stored: StoredResource | None

    @property
    def status(self) -> int:
        return {
            Outcome.CREATED: 201,
            Outcome.UPDATED: 200,
            Outcome.UNCHANGED: 200,
            Outcome.DELETED: 204,
            Outcome.NOT_PRESENT: 204,
        }[self.outcome]


@dataclass(frozen=True)
class SearchPage:
    matches: list[StoredResource]
    included: list[StoredResource]
    total: int | None


@dataclass(frozen=True)
class HistoryPage:
    entries: list[StoredResource]
    total: int
