"""Value objects of the ingest pipelines (pure).

A source row becomes FHIR resources keyed by its natural key; the patient it is about is found by
the matching rule in `matching.py` over these identifiers and demographics.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class RowError(ValueError):
    """A source row that cannot be mapped. The message is the dead-letter reason: it names the
    column and the rule, never the value (which may be PHI)."""


@dataclass(frozen=True, order=True)
class Identifier:
    """A business identifier (FHIR Identifier.system + value)."""

    system: str
    value: str

    @property
    def token(self) -> str:
        return f"{self.system}|{self.value}"


def normalized_name(text: str) -> str:
    """Name part for comparison: accents removed, case folded, only letters and digits kept,
    so `O'Brien`, `OBRIEN` and `Obrien` compare equal."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed.casefold() if c.isalnum())


@dataclass(frozen=True)
class Demographics:
    family: str
    given: str
    birth_date: str  # YYYY-MM-DD
    sex: str  # M, F or U

    def key(self) -> str:
        """SHA-256 of the normalized name, birth date and sex: what the demographic rule
        compares, stored instead of the demographics themselves."""
        parts = (normalized_name(self.family), normalized_name(self.given), self.birth_date)
        return hashlib.sha256("|".join((*parts, self.sex)).encode()).hexdigest()


@dataclass(frozen=True)
class SourcePatient:
    """Who a source row is about: the feed's own identifier first, then any others it carries."""

    primary: Identifier
    others: tuple[Identifier, ...]
    demographics: Demographics

    @property
    def identifiers(self) -> tuple[Identifier, ...]:
        return (self.primary, *self.others)


@dataclass(frozen=True)
class MappedResource:
    """A resource a row maps to, built on demand. `shared` resources (patients, stores,
    prescribers, drugs, prescriptions, payers, coverages) recur across rows and are written once
    per run, from the first row that carries them, so most rows never build them."""

    res_type: str
    res_id: str
    build: Callable[[], dict[str, Any]]
    shared: bool = False
    merged: bool = False  # other rows describe it too: the writer merges (source `merge_rules`)

    @property
    def key(self) -> tuple[str, str]:
        return self.res_type, self.res_id

    @property
    def content(self) -> dict[str, Any]:
        return self.build()


@dataclass
class IngestReport:
    """What one ingestion of one file did. Row counts are totals of the run (a resumed run
    includes the rows committed before the crash); outcomes and issues are this invocation's."""

    run_id: str
    feed: str
    file_name: str
    resumed_after: int = 0  # last source line committed before this invocation, 0 = fresh start
    rows: int = 0
    loaded: int = 0
    failed: int = 0
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (type, outcome) -> n
    issues: Counter[str] = field(default_factory=Counter)  # match issue kind -> n

    def count(self, res_type: str, outcome: str, n: int = 1) -> None:
        self.outcomes[(res_type, outcome)] += n
