"""Adherence over the FHIR store: ``Patient/$adherence``, stored MeasureReports, refill outreach.

Functions take a ``FhirStore`` bound to the caller's transaction and never commit (ADR 0004).
Reads go through ``store.search`` with parsed FHIR searches, paged until exhausted; the rules are
the pure modules' (``engine``, ``refills``, ``outreach``), the FHIR shapes ``mapping`` and
``reports``. Nothing here logs resource content (PHI).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import ibis
import pyarrow as pa

from carebridge.adherence.cohort import FILL_SCHEMA, PATIENT_SCHEMA, cohort_pdc
from carebridge.adherence.engine import (
    DateRange,
    Fill,
    PatientEvents,
    PdcOptions,
    PdcResult,
    proportion_of_days_covered,
)
from carebridge.adherence.exclusions import PatientRecordResources, record_events
from carebridge.adherence.mapping import fills_from_dispense, patient_events
from carebridge.adherence.measures import MeasureId, measure, measures_for_ingredient
from carebridge.adherence.operation import AdherenceRequest
from carebridge.adherence.outreach import (
    OutreachAction,
    OutreachRules,
    SupplyLine,
    follow_up_task,
    outreach_actions,
    preferred_channel,
    reachable,
    reminder_communication,
)
from carebridge.adherence.refills import refill_status
from carebridge.adherence.reports import adherence_parameters, measure_report
from carebridge.adherence.repository import AdherenceRepository
from carebridge.fhir.records import Method, StoredResource, WriteOp
from carebridge.fhir.search.parse import Limits, parse_search
from carebridge.fhir.store import FhirStore

PAGE_SIZE = 1000
_LIMITS = Limits(default_count=PAGE_SIZE, max_count=PAGE_SIZE)

Resource = dict[str, Any]


@dataclass(frozen=True)
class PatientRecord:
    """What the measures read about one patient."""

    patient: Resource
    dispenses: tuple[Resource, ...]
    medications: Mapping[str, Resource]
    encounters: tuple[Resource, ...] = ()
    read: tuple[StoredResource, ...] = ()  # what was read, for the audit record
    conditions: tuple[Resource, ...] = ()
    procedures: tuple[Resource, ...] = ()
    episodes: tuple[Resource, ...] = ()
    coverages: tuple[Resource, ...] = ()

    def resources(self) -> PatientRecordResources:
        return PatientRecordResources(
            self.patient,
            self.encounters,
            self.conditions,
            self.procedures,
            self.episodes,
            self.coverages,
        )


def search_all(
    store: FhirStore, resource_type: str, params: Sequence[tuple[str, str]]
) -> Iterator[StoredResource]:
    """Every match of a FHIR search and its ``_include``s, page by page in store order.

    Included resources can repeat across pages; callers key them by reference.
    """
    offset = 0
    while True:
        pairs = [*params, ("_count", str(PAGE_SIZE)), ("_offset", str(offset)), ("_total", "none")]
        page = store.search(parse_search([resource_type], pairs, strict=True, limits=_LIMITS))
        yield from page.matches
        yield from page.included
        if len(page.matches) < PAGE_SIZE:
            return
        offset += PAGE_SIZE


# What the exclusions and stays are read from, and the search parameter naming the patient.
EVENT_SOURCES = (
    ("Encounter", "patient"),
    ("Condition", "patient"),
    ("Procedure", "patient"),
    ("EpisodeOfCare", "patient"),
    ("Coverage", "beneficiary"),
)


def patient_record(store: FhirStore, patient_id: str) -> PatientRecord:
    """The patient (404 if unknown, 410 if deleted), its dispenses with their Medications, and
    the resources its exclusions and stays are read from (``EVENT_SOURCES``)."""
    stored = store.read("Patient", patient_id)
    subject = f"Patient/{patient_id}"
    dispenses: list[Resource] = []
    medications: dict[str, Resource] = {}
    include = ("_include", "MedicationDispense:medication")
    read = [stored, *search_all(store, "MedicationDispense", [("patient", subject), include])]
    for found in read[1:]:
        if found.res_type == "Medication" and found.content:
            medications[found.reference] = found.content
        elif found.content:
            dispenses.append(found.content)
    events: dict[str, tuple[Resource, ...]] = {}
    for res_type, param in EVENT_SOURCES:
        found_events = list(search_all(store, res_type, [(param, subject)]))
        read += found_events
        events[res_type] = tuple(r.content for r in found_events if r.content)
    return PatientRecord(
        stored.content or {},
        tuple(dispenses),
        medications,
        events["Encounter"],
        tuple(read),
        conditions=events["Condition"],
        procedures=events["Procedure"],
        episodes=events["EpisodeOfCare"],
        coverages=events["Coverage"],
    )


def record_fills(record: PatientRecord) -> tuple[Fill, ...]:
    return tuple(
        fill
        for dispense in record.dispenses
        for fill in fills_from_dispense(dispense, medications=record.medications)
    )


def score_patient(
    record: PatientRecord,
    period: DateRange,
    measures: Sequence[MeasureId],
    *,
    options: PdcOptions | None = None,
) -> tuple[PdcResult, ...]:
    """PQA PDC of each measure for one patient (engine.proportion_of_days_covered), with the
    hospice and ESRD exclusions, stays, death and disenrollment read from the record
    (``exclusions.record_events``)."""
    fills = record_fills(record)
    events: PatientEvents = record_events(record.resources(), as_of=period.end)
    return tuple(
        proportion_of_days_covered(fills, measure(m), period, events=events, options=options)
        for m in measures
    )


def persist_measure_reports(
    store: FhirStore, patient_id: str, period: DateRange, results: Sequence[PdcResult]
) -> dict[MeasureId, str]:
    """Store one individual MeasureReport per result; the id is derived from patient, measure
    and period, so a rerun updates (or, unchanged, leaves) the same resource."""
    reports = [measure_report(patient_id, r, period) for r in results]
    store.write([WriteOp(Method.PUT, "MeasureReport", r["id"], r) for r in reports])
    return {
        r.measure: f"MeasureReport/{rep['id']}" for r, rep in zip(results, reports, strict=True)
    }


@dataclass(frozen=True)
class AdherenceAnswer:
    parameters: Resource
    read: tuple[StoredResource, ...]


def adherence_operation(
    store: FhirStore, patient_id: str, request: AdherenceRequest
) -> AdherenceAnswer:
    """``Patient/$adherence``: the PDC of each requested measure as a Parameters resource, and
    with ``persist`` the MeasureReports stored for trends (R4 measurereport.html). ``read``
    lists the resources it was computed from, for the caller's audit record."""
    record = patient_record(store, patient_id)
    results = score_patient(record, request.period, request.measures)
    report_ids = None
    if request.persist:
        report_ids = persist_measure_reports(store, patient_id, request.period, results)
    return AdherenceAnswer(adherence_parameters(results, report_ids), record.read)


@dataclass
class OutreachSummary:
    actions: list[OutreachAction] = field(default_factory=list)
    communications_created: int = 0
    tasks_created: int = 0
    already_present: int = 0


def refill_outreach(
    store: FhirStore,
    *,
    as_of: date,
    rules: OutreachRules | None = None,
    dry_run: bool = False,
) -> OutreachSummary:
    """Refill reminders (Communication) and pharmacist follow-ups (Task) due on ``as_of``.

    Reads every completed MedicationDispense, computes each patient's run-out per ingredient
    (``refills.refill_status``) and applies ``outreach.outreach_actions``. Nothing is sent: no
    channel adapter is configured, so Communications are written with status ``preparation``.
    Patients who are inactive or recorded as deceased are not contacted. A resource whose
    deterministic id already exists is left as it is, so a second run on the
    same day creates nothing and does not undo a status someone has since changed.
    """
    lines = supply_lines(store, as_of=as_of)
    patients = {
        p.res_id: p.content or {}
        for p in store.fetch(("Patient", pid) for pid in {line.patient_id for line in lines})
    }
    lines = [line for line in lines if reachable(patients.get(line.patient_id, {}), as_of)]
    summary = OutreachSummary(actions=list(outreach_actions(lines, as_of=as_of, rules=rules)))
    if dry_run or not summary.actions:
        return summary
    resources = []
    for action in summary.actions:
        channel = preferred_channel(patients.get(action.line.patient_id, {}))
        resources.append(reminder_communication(action, channel, as_of=as_of))
        if action.follow_up:
            resources.append(follow_up_task(action, as_of=as_of))
    _write_new(store, resources, summary)
    return summary


def supply_lines(store: FhirStore, *, as_of: date) -> list[SupplyLine]:
    """One line per (patient, ingredient) with completed dispenses on or before ``as_of``."""
    params = [("status", "completed"), ("_include", "MedicationDispense:medication")]
    found = list(search_all(store, "MedicationDispense", params))
    medications = {
        r.reference: r.content for r in found if r.res_type == "Medication" and r.content
    }
    latest: dict[tuple[str, str], tuple[date, Resource]] = {}
    fills: dict[str, list[Fill]] = {}
    for item in found:
        patient_id = _patient_id(item.content or {})
        if item.res_type != "MedicationDispense" or patient_id is None:
            continue
        for fill in fills_from_dispense(item.content or {}, medications=medications):
            if fill.date_of_service > as_of:
                continue
            fills.setdefault(patient_id, []).append(fill)
            key = (patient_id, fill.ingredient)
            if key not in latest or latest[key][0] <= fill.date_of_service:
                latest[key] = (fill.date_of_service, item.content or {})
    return [
        _line(patient_id, status, latest[(patient_id, status.ingredient)][1])
        for patient_id, own in sorted(fills.items())
        for status in refill_status(own, as_of=as_of)
    ]


def _line(patient_id: str, status: Any, dispense: Resource) -> SupplyLine:
    prescriptions = dispense.get("authorizingPrescription") or []
    prescription = prescriptions[0].get("reference") if prescriptions else None
    return SupplyLine(patient_id, status, f"MedicationDispense/{dispense['id']}", prescription)


def _patient_id(dispense: Resource) -> str | None:
    reference = (dispense.get("subject") or {}).get("reference")
    if not isinstance(reference, str):
        return None
    parts = reference.rstrip("/").split("/")
    return parts[-1] if len(parts) >= 2 and parts[-2] == "Patient" else None


def _write_new(store: FhirStore, resources: list[Resource], summary: OutreachSummary) -> None:
    keys = [(r["resourceType"], r["id"]) for r in resources]
    present = {(s.res_type, s.res_id) for s in store.fetch(keys)}
    ops = [
        WriteOp(Method.PUT, r["resourceType"], r["id"], r)
        for r in resources
        if (r["resourceType"], r["id"]) not in present
    ]
    summary.already_present = len(resources) - len(ops)
    summary.communications_created = sum(op.res_type == "Communication" for op in ops)
    summary.tasks_created = sum(op.res_type == "Task" for op in ops)
    if ops:
        store.write(ops)


# -- population ---------------------------------------------------------------------------------


def cohort_inputs(
    repository: AdherenceRepository, *, store_id: str | None = None
) -> tuple[pa.Table, pa.Table]:
    """(fills, patients) Arrow tables in ``cohort.FILL_SCHEMA`` / ``PATIENT_SCHEMA`` from the store.

    One fill row per target or exclusion ingredient of each completed dispense and per measure it
    is routed to. ``store_id`` keeps the dispenses whose ``location`` is a Location carrying that
    identifier value (the pharmacy's NCPDP provider id).
    """
    medications = repository.by_reference("Medication")
    locations = _locations_of_store(repository, store_id) if store_id else None
    columns: dict[str, list[Any]] = {name: [] for name in FILL_SCHEMA.names}
    for dispense in repository.current("MedicationDispense"):
        patient_id = _patient_id(dispense)
        if patient_id is None or not _at_location(dispense, locations):
            continue
        for fill in fills_from_dispense(dispense, medications=medications):
            for measure_id in measures_for_ingredient(fill.ingredient):
                row = (patient_id, fill.date_of_service, fill.days_supply, fill.ingredient)
                for name, value in zip(FILL_SCHEMA.names, (*row, measure_id.value), strict=True):
                    columns[name].append(value)
    fills = pa.table(columns, schema=FILL_SCHEMA.to_pyarrow())
    return fills, _patient_table(repository, set(columns["patient_id"]))


def cohort_scores(
    fills: pa.Table, patients: pa.Table, period: DateRange, *, options: PdcOptions | None = None
) -> pa.Table:
    """``cohort.cohort_pdc`` on an in-process DuckDB, one row per (patient, measure).

    The cohort engine has no inpatient-stay adjustment (docs/clinical.md, "Cohort engine").
    """
    connection = ibis.duckdb.connect()
    try:
        expression = cohort_pdc(
            ibis.memtable(fills), period, patients=ibis.memtable(patients), options=options
        )
        table: pa.Table = connection.to_pyarrow(expression.order_by(["patient_id", "measure"]))
        return table
    finally:
        connection.disconnect()


def _patient_table(repository: AdherenceRepository, wanted: set[str]) -> pa.Table:
    columns: dict[str, list[Any]] = {name: [] for name in PATIENT_SCHEMA.names}
    for patient in repository.current("Patient"):
        if patient.get("id") not in wanted:
            continue
        events = patient_events(patient)
        values = (patient["id"], events.birth_date, events.death_date, None, None, None)
        for name, value in zip(PATIENT_SCHEMA.names, values, strict=True):
            columns[name].append(value)
    return pa.table(columns, schema=PATIENT_SCHEMA.to_pyarrow())


def _locations_of_store(repository: AdherenceRepository, store_id: str) -> set[str]:
    return {
        f"Location/{location['id']}"
        for location in repository.current("Location")
        if any(i.get("value") == store_id for i in location.get("identifier") or [])
    }


def _at_location(dispense: Resource, locations: set[str] | None) -> bool:
    if locations is None:
        return True
    reference = (dispense.get("location") or {}).get("reference")
    if not isinstance(reference, str):
        return False
    return "/".join(reference.rstrip("/").split("/")[-2:]) in locations
