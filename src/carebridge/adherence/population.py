"""``Measure/[id]/$evaluate-measure`` over the FHIR store: a population's PDC as a MeasureReport.

Reads through ``FhirStore.search`` (so the caller's access scope and consent apply, as for every
FHIR read), groups the resources by patient and scores each patient with the same per-patient
path as ``Patient/$adherence`` (``service.score_patient``: exclusions, stays, death and
disenrollment included), so a patient counts the same in both. The population cohort engine
(``cohort.py``) is faster but has no stay adjustment; it stays the tool for the CLI's whole-chain
runs. Functions take a ``FhirStore`` bound to the caller's transaction and never commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from carebridge.adherence.engine import DateRange
from carebridge.adherence.evaluation import (
    MEASURE_IDS,
    UNATTRIBUTED,
    GroupBy,
    ReportType,
    Scored,
    measure_resource,
    population_report,
)
from carebridge.adherence.mapping import date_of_service, fills_from_dispense
from carebridge.adherence.measures import MeasureId, measure
from carebridge.adherence.operation import EvaluateRequest
from carebridge.adherence.reports import measure_report
from carebridge.adherence.service import (
    EVENT_SOURCES,
    PatientRecord,
    patient_record,
    score_patient,
    search_all,
)
from carebridge.fhir.records import Method, StoredResource, WriteOp
from carebridge.fhir.store import FhirStore
from carebridge.kit.errors import NotFoundError

Resource = dict[str, Any]
# The element of each type that names its patient.
PATIENT_ELEMENT = {"MedicationDispense": "subject", "Coverage": "beneficiary"} | {
    "Encounter": "subject",
    "Condition": "subject",
    "Procedure": "subject",
    "EpisodeOfCare": "patient",
}


@dataclass(frozen=True)
class EvaluateAnswer:
    report: Resource
    read: tuple[StoredResource, ...]


@dataclass
class _Gathered:
    patients: dict[str, Resource] = field(default_factory=dict)
    medications: dict[str, Resource] = field(default_factory=dict)
    locations: dict[str, Resource] = field(default_factory=dict)
    by_patient: dict[str, dict[str, list[Resource]]] = field(default_factory=dict)
    read: list[StoredResource] = field(default_factory=list)


def measure_id_of(key: str) -> MeasureId:
    """The measure behind a Measure id (``pdc-rasa``); 404 for any other id."""
    found = MEASURE_IDS.get(key)
    if found is None:
        raise NotFoundError(f"Measure/{key} is not known; known: {', '.join(MEASURE_IDS)}")
    return found


def evaluate_measure(store: FhirStore, key: str, request: EvaluateRequest) -> EvaluateAnswer:
    """R4 ``$evaluate-measure`` for one PQA measure (measure-operation-evaluate-measure.html).

    An individual report scores ``request.subject`` exactly as ``Patient/$adherence``; summary
    and subject-list reports score every patient with a completed dispense and count them in the
    R4 measure populations (PQA PDC specification, docs/clinical.md). With ``persist`` the
    report is stored and the three Measure resources are created if missing.
    """
    measure_id = measure_id_of(key)
    if request.report_type is ReportType.INDIVIDUAL:
        assert request.subject is not None
        record = patient_record(store, request.subject)
        (result,) = score_patient(record, request.period, [measure_id])
        report = measure_report(request.subject, result, request.period)
        read: tuple[StoredResource, ...] = record.read
    else:
        gathered = gather(store, with_locations=request.group_by is not None)
        scored = score_population(gathered, measure_id, request.period, request.group_by)
        report = population_report(
            measure_id,
            request.period,
            scored,
            report_type=request.report_type,
            group_by=request.group_by,
        )
        read = tuple(gathered.read)
    if request.persist:
        ensure_measures(store)
        store.write([WriteOp(Method.PUT, "MeasureReport", report["id"], report)])
    return EvaluateAnswer(report, read)


def ensure_measures(store: FhirStore) -> list[str]:
    """Create the Measure resources pdc-dr, pdc-rasa and pdc-sta if missing; returns the ids
    created. Existing ones are left as they are (idempotent)."""
    wanted = {m.value.lower(): m for m in MeasureId}
    present = {s.res_id for s in store.fetch(("Measure", key) for key in wanted)}
    missing = [key for key in wanted if key not in present]
    if missing:
        store.write(
            [WriteOp(Method.PUT, "Measure", k, measure_resource(wanted[k])) for k in missing]
        )
    return missing


def gather(store: FhirStore, *, with_locations: bool) -> _Gathered:
    """Every dispense (with Medications), Patient and event resource, keyed by patient."""
    gathered = _Gathered()
    include = [("status", "completed"), ("_include", "MedicationDispense:medication")]
    sources = [("MedicationDispense", include), ("Patient", [])]
    sources += [(res_type, []) for res_type, _ in EVENT_SOURCES]
    if with_locations:
        sources.append(("Location", []))
    for res_type, params in sources:
        for found in search_all(store, res_type, params):
            gathered.read.append(found)
            _file(gathered, found)
    return gathered


def score_population(
    gathered: _Gathered, measure_id: MeasureId, period: DateRange, group_by: GroupBy | None
) -> list[Scored]:
    """One ``Scored`` per patient with a dispense of the measure's class, in patient order."""
    ingredients = measure(measure_id).ingredients
    scored = []
    for patient_id, own in sorted(gathered.by_patient.items()):
        patient = gathered.patients.get(patient_id)
        dispenses = own.get("MedicationDispense", [])
        if patient is None or not _dispenses_of(dispenses, gathered.medications, ingredients):
            continue
        record = PatientRecord(
            patient,
            tuple(dispenses),
            gathered.medications,
            tuple(own.get("Encounter", [])),
            conditions=tuple(own.get("Condition", [])),
            procedures=tuple(own.get("Procedure", [])),
            episodes=tuple(own.get("EpisodeOfCare", [])),
            coverages=tuple(own.get("Coverage", [])),
        )
        (result,) = score_patient(record, period, [measure_id])
        stratum = _stratum(record, ingredients, period, gathered.locations, group_by)
        scored.append(Scored(patient_id, result, stratum))
    return scored


def _file(gathered: _Gathered, found: StoredResource) -> None:
    content = found.content
    if not content:
        return
    if found.res_type == "Patient":
        gathered.patients[found.res_id] = content
    elif found.res_type == "Medication":
        gathered.medications[found.reference] = content
    elif found.res_type == "Location":
        gathered.locations[found.reference] = content
    else:
        patient_id = _patient_of(content.get(PATIENT_ELEMENT[found.res_type]))
        if patient_id is not None:
            own = gathered.by_patient.setdefault(patient_id, {})
            own.setdefault(found.res_type, []).append(content)


def _dispenses_of(
    dispenses: Iterable[Resource], medications: Mapping[str, Resource], ingredients: frozenset[str]
) -> list[Resource]:
    return [
        d
        for d in dispenses
        if any(f.ingredient in ingredients for f in fills_from_dispense(d, medications=medications))
    ]


def _stratum(
    record: PatientRecord,
    ingredients: frozenset[str],
    period: DateRange,
    locations: Mapping[str, Resource],
    group_by: GroupBy | None,
) -> str:
    """The Location of the latest in-period dispense of the class (``store``), or that
    Location's managing Organization (``organization``); ``UNATTRIBUTED`` when unknown."""
    if group_by is None:
        return UNATTRIBUTED
    dated = [
        (day, d)
        for d in _dispenses_of(record.dispenses, record.medications, ingredients)
        if (day := date_of_service(d)) is not None and day in period
    ]
    if not dated:
        return UNATTRIBUTED
    _, latest = max(dated, key=lambda pair: pair[0])
    location = _relative((latest.get("location") or {}).get("reference"))
    if location is None or group_by is GroupBy.STORE:
        return location or UNATTRIBUTED
    managing = (locations.get(location) or {}).get("managingOrganization") or {}
    return _relative(managing.get("reference")) or UNATTRIBUTED


def _relative(reference: object) -> str | None:
    if not isinstance(reference, str) or "/" not in reference:
        return None
    return "/".join(reference.rstrip("/").split("/")[-2:])


def _patient_of(reference_element: object) -> str | None:
    if not isinstance(reference_element, dict):
        return None
    relative = _relative(reference_element.get("reference"))
    if relative is None or not relative.startswith("Patient/"):
        return None
    return relative.split("/", 1)[1]
