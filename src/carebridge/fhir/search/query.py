"""The parsed form of a FHIR search request (pure value objects)."""

from __future__ import annotations

from dataclasses import dataclass, field

from carebridge.fhir.search.parameters import SearchParam, patient_compartment


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


def pinned_patient(query: SearchQuery) -> str | None:
    """The one patient every result must belong to, when a plain reference criterion on a
    Patient-compartment parameter of every searched type names exactly one Patient
    (`Observation?patient=123`, `?subject=Patient/123`); else None. A type's `patient`
    parameter always selects an element its compartment definition lists (Observation.patient
    is `subject.where(resolve() is Patient)`, in the compartment through `subject`)."""
    members = patient_compartment()
    types = query.resource_types
    if not types or any(t not in members or t == "Patient" for t in types):
        return None
    for criterion in query.criteria:
        if (
            criterion.type != "reference"
            or criterion.modifier not in (None, "Patient")
            or criterion.chain
            or len(criterion.values) != 1
            or any(criterion.code not in (*members[t], "patient") for t in types)
        ):
            continue
        value = criterion.values[0]
        if value.startswith("Patient/") and value.count("/") == 1:
            return value.removeprefix("Patient/")
        if (
            "/" not in value
            and ":" not in value
            and (criterion.code == "patient" or criterion.modifier == "Patient")
        ):
            return value
    return None
