"""Scoring the whole store (`carebridge adherence`): the cohort engine, fed with the exclusions
and stays read from each patient's FHIR record, and the per-patient engine where the cohort
engine cannot follow the rules.

- Hospice and ESRD evidence overlapping the period, and the last enrolled day of Part D
  coverage, come from Encounters, Conditions, Procedures, EpisodesOfCare and Coverages
  (`exclusions.record_events`, the same rules as `Patient/$adherence`).
- Patients with an inpatient or skilled-nursing stay in the period are scored by the per-patient
  engine: holding supply through a stay is a recursion the cohort expression cannot express
  (cohort.py). Everyone else is scored by the cohort engine on DuckDB.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from carebridge.adherence.cohort import PATIENT_SCHEMA
from carebridge.adherence.engine import (
    DateRange,
    Fill,
    PatientEvents,
    PdcOptions,
    proportion_of_days_covered,
)
from carebridge.adherence.exclusions import PatientRecordResources, record_events
from carebridge.adherence.measures import measure
from carebridge.adherence.repository import AdherenceRepository, Resource
from carebridge.adherence.service import cohort_inputs, cohort_scores
from carebridge.fhir.search.values import local_reference

# type -> the elements that name the patient
_RECORD_TYPES = {
    "Encounter": ("subject",),
    "Condition": ("subject",),
    "Procedure": ("subject",),
    "EpisodeOfCare": ("patient",),
    "Coverage": ("beneficiary",),
}


def population_scores(
    repository: AdherenceRepository,
    period: DateRange,
    *,
    store_id: str | None = None,
    options: PdcOptions | None = None,
) -> pa.Table:
    """One row per (patient, measure), ordered by patient and measure."""
    fills, base = cohort_inputs(repository, store_id=store_id)
    wanted = set(base.column("patient_id").to_pylist())
    events = {
        pid: record_events(record, as_of=period.end)
        for pid, record in _records(repository, wanted).items()
    }
    patients = _patient_flags(base, events, period)
    scores = cohort_scores(fills, patients, period, options=options)
    stays = {pid for pid, e in events.items() if any(s.overlaps(period) for s in e.stays)}
    if not stays:
        return scores
    kept = scores.filter(pc.invert(pc.is_in(scores.column("patient_id"), pa.array(sorted(stays)))))
    engine_rows = _engine_rows(scores, fills, stays, events, period, options)
    merged = pa.concat_tables([kept, pa.Table.from_pylist(engine_rows, schema=scores.schema)])
    return merged.sort_by([("patient_id", "ascending"), ("measure", "ascending")])


def _records(
    repository: AdherenceRepository, wanted: set[str]
) -> dict[str, PatientRecordResources]:
    grouped: dict[str, dict[str, list[Resource]]] = defaultdict(lambda: defaultdict(list))
    for res_type, fields in _RECORD_TYPES.items():
        for item in repository.current(res_type):
            for name in fields:
                key = local_reference(item.get(name))
                pid = key[1] if key is not None and key[0] == "Patient" else None
                if pid in wanted:
                    grouped[pid][res_type].append(item)
    patients = {p["id"]: p for p in repository.current("Patient") if p.get("id") in wanted}
    return {
        pid: PatientRecordResources(
            patient=patients.get(pid, {"resourceType": "Patient", "id": pid}),
            encounters=tuple(grouped[pid]["Encounter"]),
            conditions=tuple(grouped[pid]["Condition"]),
            procedures=tuple(grouped[pid]["Procedure"]),
            episodes=tuple(grouped[pid]["EpisodeOfCare"]),
            coverages=tuple(grouped[pid]["Coverage"]),
        )
        for pid in wanted
    }


def _patient_flags(base: pa.Table, events: dict[str, PatientEvents], period: DateRange) -> pa.Table:
    rows = []
    for row in base.to_pylist():
        found = events.get(row["patient_id"])
        if found is not None:
            row["death_date"] = row["death_date"] or found.death_date
            row["disenrollment_date"] = found.disenrollment_date
            row["hospice"] = any(r.overlaps(period) for r in found.hospice)
            row["esrd"] = any(r.overlaps(period) for r in found.esrd)
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=PATIENT_SCHEMA.to_pyarrow())


def _engine_rows(
    scores: pa.Table,
    fills: pa.Table,
    patients: set[str],
    events: dict[str, PatientEvents],
    period: DateRange,
    options: PdcOptions | None,
) -> list[dict[str, Any]]:
    by_patient: dict[str, list[Fill]] = defaultdict(list)
    for row in fills.filter(
        pc.is_in(fills.column("patient_id"), pa.array(sorted(patients)))
    ).to_pylist():
        by_patient[row["patient_id"]].append(
            Fill(row["date_of_service"], row["days_supply"], row["ingredient"])
        )
    pairs = sorted(
        {
            (r["patient_id"], r["measure"])
            for r in scores.select(["patient_id", "measure"]).to_pylist()
            if r["patient_id"] in patients
        }
    )
    out = []
    for pid, measure_id in pairs:
        result = proportion_of_days_covered(
            by_patient[pid], measure(measure_id), period, events=events[pid], options=options
        )
        out.append(
            {
                "patient_id": pid,
                "measure": measure_id,
                "eligible": result.eligible,
                "pdc": result.pdc,
                "adherent": result.adherent,
                "days_covered": result.days_covered,
                "days_in_period": result.days_in_period,
                "exclusion_reason": str(result.exclusion_reason)
                if result.exclusion_reason
                else None,
                "index_date": result.index_date,
            }
        )
    return out
