"""The claims of one visit share one Encounter (pure).

A hospital visit is billed by the facility (UB-04 / 837I: the emergency department, the stay)
and by each physician who saw the patient there (CMS-1500 / 837P), with the same place of
service and the same service (admission) date. Claims carry no encounter id, so the visit is
identified by what its claims share: the patient (after matching), the encounter class from the
place of service and the start date. This holds for the facility-billed classes only, emergency
(`EMER`), inpatient (`IMP`) and non-acute stays (`NONAC`); an office or lab claim keeps its own
Encounter, since one patient may see two physicians on one day. So an ER visit is one Encounter
whichever of its claims arrives first, and counting Encounters counts visits (the claims-based
convention of, e.g., NCQA HEDIS "Emergency Department Utilization" and "Plan All-Cause
Readmissions", which count visits and stays, not claims).

Each claim maps to that Encounter as it alone describes it; `merge_encounters` combines two
descriptions of one visit. It is commutative, associative and idempotent (lists are unions in a
fixed order, dates the widest period, single values the smallest when they differ), so the
stored Encounter is the same whatever the order of the claims, the batches or the files, and
ingesting a claim again changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from carebridge.ingest.identity import resource_id

VISIT_CLASSES = frozenset({"EMER", "IMP", "NONAC"})  # v3 ActCode, from the place of service
VISIT = "visit"  # the key space of visit Encounter ids


def is_visit_class(encounter_class: str) -> bool:
    return encounter_class in VISIT_CLASSES


def visit_encounter_id(patient_id: str, encounter_class: str, start: str) -> str:
    return resource_id("Encounter", VISIT, patient_id, encounter_class, start)


def merge_encounters(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """One Encounter from two descriptions of the same visit (same id, patient, class, start).
    An element only one has is kept; one both have and that is not a list or the period is
    the smaller of the two (by canonical JSON) when they differ."""
    merged = {key: _smallest(a.get(key), b.get(key)) for key in a.keys() | b.keys()}
    for field in _LISTS:
        merged[field] = _union(a.get(field), b.get(field))
    merged["diagnosis"].sort(key=_diagnosis_order)
    merged["period"] = _widest(a.get("period") or {}, b.get("period") or {})
    return {k: v for k, v in merged.items() if v not in (None, [], {})}


_LISTS = ("identifier", "type", "diagnosis", "participant")  # merged as unions


def _canonical(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _union(a: Iterable[Any] | None, b: Iterable[Any] | None) -> list[Any]:
    """The elements of both, each once, in the order of their canonical JSON."""
    found = {_canonical(item): item for item in (*(a or ()), *(b or ()))}
    return [found[key] for key in sorted(found)]


def _smallest(a: Any, b: Any) -> Any:
    present = [v for v in (a, b) if v is not None]
    return min(present, key=_canonical) if present else None


def _widest(a: dict[str, str], b: dict[str, str]) -> dict[str, str]:
    """The period from the earlier start to the later end (ISO dates compare as text when
    they have the same precision, as the feed's dates do)."""
    period = {}
    for field, pick in (("start", min), ("end", max)):
        values = [v for v in (a.get(field), b.get(field)) if v]
        if values:
            period[field] = pick(values)
    return period


def _diagnosis_order(diagnosis: dict[str, Any]) -> tuple[int, bytes]:
    return int(diagnosis.get("rank") or 0), _canonical(diagnosis)
