"""Hospice, ESRD, stays, death and disenrollment from a patient's FHIR record, as PatientEvents.

Pure: FHIR R4 dicts in, ``engine.PatientEvents`` out. The codes below are the value sets named
next to them, as expanded in the NLM VSAC releases that the CMS eCQM content publishes (sources
and the rules for dates: docs/clinical.md, "Exclusions read from the FHIR record").

- hospice: an Encounter, EpisodeOfCare, Condition or Procedure coded with ``HOSPICE_CODES``;
- ESRD: a Condition coded with ``ESRD_CODES`` or a Procedure coded with ``DIALYSIS_CODES``;
- disenrollment: the end of the patient's pharmacy Coverage (``disenrollment_date``);
- stays and death: ``mapping.patient_events``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from datetime import date
from typing import Any

from carebridge.adherence.engine import DateRange, PatientEvents
from carebridge.adherence.mapping import PLACE_OF_SERVICE, calendar_day, patient_events

Resource = Mapping[str, Any]
Code = tuple[str, str]

SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
COVERAGE_CLASS = "http://terminology.hl7.org/CodeSystem/coverage-class"


def _codes(system: str, *codes: str) -> frozenset[Code]:
    return frozenset((system, code) for code in codes)


HOSPICE_CODES: frozenset[Code] = (
    # VSAC 2.16.840.1.113883.3.464.1003.1003 Hospice Encounter (SNOMED CT and HCPCS parts)
    _codes(SNOMED, "183919006", "183920000", "183921001", "305336008", "305911006", "385765002")
    | _codes(HCPCS, "Q5003", "Q5004", "Q5005", "Q5006", "Q5007", "Q5008", "Q5010", "S9126")
    | _codes(HCPCS, "T2042", "T2043", "T2044", "T2045", "T2046")
    # VSAC 2.16.840.1.113762.1.4.1108.15 Hospice Care Ambulatory: Hospice care (regime/therapy)
    | _codes(SNOMED, "385763009")
    # VSAC 2.16.840.1.113883.3.464.1003.1165 Hospice Diagnosis (findings)
    | _codes(SNOMED, "170935008", "170936009")
    # CMS place of service 34 Hospice (the claims feed types its Encounters with it)
    | _codes(PLACE_OF_SERVICE, "34")
)
ESRD_CODES: frozenset[Code] = (
    # VSAC 2.16.840.1.113883.3.526.3.353 End Stage Renal Disease
    _codes(ICD10CM, "N18.6")
    | _codes(SNOMED, "46177005", "236434000", "236435004", "236436003")
    # ICD-10-CM Z99.2 Dependence on renal dialysis (tabular: hemodialysis/peritoneal status)
    | _codes(ICD10CM, "Z99.2")
)
DIALYSIS_CODES: frozenset[Code] = (
    # VSAC 2.16.840.1.113883.3.526.3.1083 Hemodialysis and ...3.1084 Peritoneal Dialysis
    _codes(SNOMED, "302497006", "71192002", "14684005", "225230008", "238318009", "238319001")
    | _codes(SNOMED, "238321006", "238322004", "238323009", "428648006", "676002")
    | _codes(CPT, "90945", "90947", "99512", *(str(c) for c in range(90951, 90971)))
)
PHARMACY_COVERAGE_TYPES: frozenset[Code] = _codes(V3_ACT_CODE, "DRUGPOL")
PHARMACY_CLASS_TYPES = frozenset({"rxbin", "rxpcn", "rxid", "rxgroup"})

_ENCOUNTER_STATUSES = frozenset({"finished", "in-progress", "onleave", "arrived"})
_EPISODE_STATUSES = frozenset({"active", "onhold", "finished"})
_PROCEDURE_STATUSES = frozenset({"completed", "in-progress"})
_REFUTED = frozenset({"refuted", "entered-in-error"})
_ENDED_CLINICAL_STATUSES = frozenset({"inactive", "resolved", "remission"})
_COVERAGE_STATUSES = frozenset({"active", "cancelled"})


@dataclasses.dataclass(frozen=True)
class PatientRecordResources:
    """The resources of one patient that the exclusions and stays are read from."""

    patient: Resource
    encounters: tuple[Resource, ...] = ()
    conditions: tuple[Resource, ...] = ()
    procedures: tuple[Resource, ...] = ()
    episodes: tuple[Resource, ...] = ()
    coverages: tuple[Resource, ...] = ()


def record_events(record: PatientRecordResources, *, as_of: date) -> PatientEvents:
    """Everything the PDC engine needs besides fills. ``as_of`` (the measurement period end)
    closes open-ended evidence: an open stay, a Condition without abatement, an active episode."""
    events = patient_events(record.patient, record.encounters, as_of=as_of)
    return dataclasses.replace(
        events,
        hospice=hospice_periods(record, as_of=as_of),
        esrd=esrd_periods(record.conditions, record.procedures, as_of=as_of),
        disenrollment_date=disenrollment_date(record.coverages),
    )


def hospice_periods(record: PatientRecordResources, *, as_of: date) -> tuple[DateRange, ...]:
    """Date ranges of hospice care: coded Encounters and EpisodesOfCare (their period),
    Conditions (onset to abatement) and Procedures (performed)."""
    ranges = [
        *(
            _period(e.get("period"), as_of)
            for e in record.encounters
            if e.get("status") in _ENCOUNTER_STATUSES and _encounter_is_hospice(e)
        ),
        *(
            _period(e.get("period"), as_of)
            for e in record.episodes
            if e.get("status") in _EPISODE_STATUSES and _coded(e.get("type") or [], HOSPICE_CODES)
        ),
        *_condition_ranges(record.conditions, HOSPICE_CODES, as_of),
        *_procedure_ranges(record.procedures, HOSPICE_CODES, as_of),
    ]
    return tuple(r for r in ranges if r is not None)


def esrd_periods(
    conditions: Iterable[Resource], procedures: Iterable[Resource], *, as_of: date
) -> tuple[DateRange, ...]:
    """Date ranges of ESRD evidence: diagnoses (onset, else recorded date, to abatement) and
    dialysis procedures (the days performed)."""
    ranges = [
        *_condition_ranges(conditions, ESRD_CODES, as_of),
        *_procedure_ranges(procedures, DIALYSIS_CODES, as_of),
    ]
    return tuple(r for r in ranges if r is not None)


def disenrollment_date(coverages: Iterable[Resource]) -> date | None:
    """The last day of pharmacy (Part D) coverage, or None while it continues or is unknown.

    A Coverage is pharmacy coverage when its ``type`` is v3 ActCode DRUGPOL or it carries a
    pharmacy benefit class (coverage-class rxbin, rxpcn, rxid, rxgroup). If any such Coverage has
    no ``period.end`` the patient is still enrolled; otherwise enrolment ends on the latest end.
    Without pharmacy Coverage nothing is known and nothing is cut.
    """
    ends: list[date | None] = [
        calendar_day((c.get("period") or {}).get("end"))
        for c in coverages
        if c.get("status") in _COVERAGE_STATUSES and is_pharmacy_coverage(c)
    ]
    if not ends or any(end is None for end in ends):
        return None
    return max(end for end in ends if end is not None)


def is_pharmacy_coverage(coverage: Resource) -> bool:
    if _coded([coverage.get("type") or {}], PHARMACY_COVERAGE_TYPES):
        return True
    return any(
        coding.get("system") == COVERAGE_CLASS and coding.get("code") in PHARMACY_CLASS_TYPES
        for item in coverage.get("class") or []
        for coding in (item.get("type") or {}).get("coding") or []
    )


def _encounter_is_hospice(encounter: Resource) -> bool:
    concepts = [*(encounter.get("type") or []), encounter.get("serviceType") or {}]
    return _coded(concepts, HOSPICE_CODES)


def _condition_ranges(
    conditions: Iterable[Resource], codes: frozenset[Code], as_of: date
) -> Iterator[DateRange | None]:
    for condition in conditions:
        if _status_code(condition, "verificationStatus") in _REFUTED:
            continue
        if _coded([condition.get("code") or {}], codes):
            yield _condition_range(condition, as_of)


def _condition_range(condition: Resource, as_of: date) -> DateRange | None:
    """Onset (else the recorded date) to abatement; without abatement to ``as_of``, unless the
    clinical status says the condition has ended, when only the start day is known."""
    start = (
        calendar_day(condition.get("onsetDateTime"))
        or calendar_day((condition.get("onsetPeriod") or {}).get("start"))
        or calendar_day(condition.get("recordedDate"))
    )
    end = calendar_day(condition.get("abatementDateTime")) or calendar_day(
        (condition.get("abatementPeriod") or {}).get("end")
    )
    if end is None and _status_code(condition, "clinicalStatus") in _ENDED_CLINICAL_STATUSES:
        end = start
    return _range(start, end or as_of)


def _procedure_ranges(
    procedures: Iterable[Resource], codes: frozenset[Code], as_of: date
) -> Iterator[DateRange | None]:
    for procedure in procedures:
        if procedure.get("status") not in _PROCEDURE_STATUSES:
            continue
        if not _coded([procedure.get("code") or {}], codes):
            continue
        day = calendar_day(procedure.get("performedDateTime"))
        yield _range(day, day) if day else _period(procedure.get("performedPeriod"), as_of)


def _period(period: Resource | None, as_of: date) -> DateRange | None:
    period = period or {}
    return _range(calendar_day(period.get("start")), calendar_day(period.get("end")) or as_of)


def _range(start: date | None, end: date | None) -> DateRange | None:
    if start is None or end is None or end < start:
        return None
    return DateRange(start, end)


def _coded(concepts: Iterable[Resource], codes: frozenset[Code]) -> bool:
    return any(
        (coding.get("system"), _normal(coding.get("system"), coding.get("code"))) in codes
        for concept in concepts
        for coding in concept.get("coding") or []
    )


def _normal(system: object, code: object) -> object:
    """ICD-10-CM codes are also written without the dot (N186); compare them dotted."""
    if system == ICD10CM and isinstance(code, str) and "." not in code and len(code) > 3:
        return f"{code[:3]}.{code[3:]}".upper()
    return code


def _status_code(resource: Resource, element: str) -> str | None:
    codings = (resource.get(element) or {}).get("coding") or []
    code = codings[0].get("code") if codings else None
    return code if isinstance(code, str) else None
