"""Hospice, ESRD, stays and disenrollment read from FHIR R4 resources (exclusions, mapping)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from carebridge.adherence.engine import DateRange, Fill, proportion_of_days_covered
from carebridge.adherence.exclusions import (
    PatientRecordResources,
    disenrollment_date,
    esrd_periods,
    hospice_periods,
    record_events,
)
from carebridge.adherence.mapping import stays_from_encounters
from carebridge.adherence.measures import ExclusionReason, MeasureId, measure
from carebridge.ingest.mappers.claims import claim_resources
from tests.ingest.conftest import CLAIM

SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
POS = "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
COVERAGE_CLASS = "http://terminology.hl7.org/CodeSystem/coverage-class"
AS_OF = date(2025, 12, 31)
YEAR = DateRange(date(2025, 1, 1), AS_OF)
LISINOPRIL = "29046"


def concept(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


def status(code: str) -> dict[str, Any]:
    return {"coding": [{"code": code}]}


def encounter(period: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Encounter", "status": "finished", "period": period, **extra}


def condition(system: str, code: str, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Condition", "code": concept(system, code), **extra}


def procedure(system: str, code: str, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Procedure", "status": "completed", "code": concept(system, code)} | {
        **extra
    }


def episode(code: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "EpisodeOfCare",
        "status": "active",
        "type": [concept(SNOMED, code)],
        **extra,
    }


def coverage(end: str | None, *, drug: bool = True, **extra: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "Coverage", "status": "active", **extra}
    if drug:
        resource["type"] = concept(ACT_CODE, "DRUGPOL")
    if end is not None:
        resource["period"] = {"start": "2020-01-01", "end": end}
    return resource


def days(start: str, end: str) -> DateRange:
    return DateRange(date.fromisoformat(start), date.fromisoformat(end))


MARCH = {"start": "2025-03-01T08:00:00Z", "end": "2025-03-20T10:00:00Z"}


class TestHospicePeriods:
    @pytest.mark.parametrize(
        ("resources", "expected"),
        [
            # Encounter typed Admission to hospice (SNOMED CT 305336008)
            (
                {"encounters": (encounter(MARCH, type=[concept(SNOMED, "305336008")]),)},
                [days("2025-03-01", "2025-03-20")],
            ),
            # the claims feed's hospice place of service (CMS POS 34), open: runs to as_of
            (
                {"encounters": (encounter({"start": "2025-11-02"}, type=[concept(POS, "34")]),)},
                [days("2025-11-02", "2025-12-31")],
            ),
            # EpisodeOfCare of Hospice care (385763009), still active
            (
                {"episodes": (episode("385763009", period={"start": "2025-06-01"}),)},
                [days("2025-06-01", "2025-12-31")],
            ),
            # finding Full care by hospice (170935008), onset to abatement
            (
                {
                    "conditions": (
                        condition(
                            SNOMED,
                            "170935008",
                            onsetDateTime="2025-02-01",
                            abatementDateTime="2025-02-28",
                        ),
                    )
                },
                [days("2025-02-01", "2025-02-28")],
            ),
            # HCPCS T2042 hospice routine home care, one day
            (
                {"procedures": (procedure(HCPCS, "T2042", performedDateTime="2025-05-05"),)},
                [days("2025-05-05", "2025-05-05")],
            ),
            # Hospice care procedure over a period
            (
                {
                    "procedures": (
                        procedure(
                            SNOMED,
                            "385763009",
                            performedPeriod={"start": "2025-04-01", "end": "2025-04-09"},
                        ),
                    )
                },
                [days("2025-04-01", "2025-04-09")],
            ),
        ],
    )
    def test_reads_coded_hospice_evidence(self, resources, expected):
        record = PatientRecordResources({"resourceType": "Patient"}, **resources)
        assert list(hospice_periods(record, as_of=AS_OF)) == expected

    @pytest.mark.parametrize(
        "resources",
        [
            {"encounters": (encounter(MARCH, type=[concept(SNOMED, "32485007")]),)},
            {
                "encounters": (
                    encounter(MARCH, type=[concept(SNOMED, "305336008")], status="cancelled"),
                )
            },
            {
                "episodes": (
                    episode("385763009", status="cancelled", period={"start": "2025-06-01"}),
                )
            },
            {
                "procedures": (
                    procedure(
                        SNOMED, "385763009", status="not-done", performedDateTime="2025-05-05"
                    ),
                )
            },
            {
                "conditions": (
                    condition(
                        SNOMED,
                        "170935008",
                        onsetDateTime="2025-02-01",
                        verificationStatus=status("refuted"),
                    ),
                )
            },
            {"conditions": (condition(ICD10CM, "N18.6", onsetDateTime="2025-02-01"),)},
        ],
    )
    def test_ignores_other_codes_and_statuses(self, resources):
        record = PatientRecordResources({"resourceType": "Patient"}, **resources)
        assert hospice_periods(record, as_of=AS_OF) == ()


class TestEsrdPeriods:
    @pytest.mark.parametrize(
        ("conditions", "procedures", "expected"),
        [
            (
                [
                    condition(
                        ICD10CM,
                        "N18.6",
                        onsetDateTime="2024-05-01T00:00:00Z",
                        abatementDateTime="2025-02-01",
                    )
                ],
                [],
                [days("2024-05-01", "2025-02-01")],
            ),
            # undotted ICD-10-CM, only a recorded date: recorded to as_of
            (
                [condition(ICD10CM, "N186", recordedDate="2025-07-01")],
                [],
                [days("2025-07-01", "2025-12-31")],
            ),
            (
                [condition(ICD10CM, "Z99.2", onsetPeriod={"start": "2025-03-03"})],
                [],
                [days("2025-03-03", "2025-12-31")],
            ),
            # ended per clinical status without an abatement date: the start day only
            (
                [
                    condition(
                        SNOMED,
                        "46177005",
                        onsetDateTime="2025-04-04",
                        clinicalStatus=status("resolved"),
                    )
                ],
                [],
                [days("2025-04-04", "2025-04-04")],
            ),
            (
                [],
                [procedure(SNOMED, "302497006", performedDateTime="2025-08-08T09:00:00Z")],
                [days("2025-08-08", "2025-08-08")],
            ),
            (
                [],
                [
                    procedure(
                        CPT, "90960", status="in-progress", performedPeriod={"start": "2025-09-01"}
                    )
                ],
                [days("2025-09-01", "2025-12-31")],
            ),
        ],
    )
    def test_reads_diagnoses_and_dialysis(self, conditions, procedures, expected):
        assert list(esrd_periods(conditions, procedures, as_of=AS_OF)) == expected

    @pytest.mark.parametrize(
        ("conditions", "procedures"),
        [
            # chronic kidney disease stage 5 is not ESRD
            ([condition(ICD10CM, "N18.5", onsetDateTime="2025-01-01")], []),
            (
                [
                    condition(
                        ICD10CM,
                        "N18.6",
                        onsetDateTime="2025-01-01",
                        verificationStatus=status("entered-in-error"),
                    )
                ],
                [],
            ),
            # a partial onset date and no recorded date: no day to start from
            ([condition(ICD10CM, "N18.6", onsetDateTime="2024")], []),
            (
                [],
                [procedure(SNOMED, "302497006", status="not-done", performedDateTime="2025-08-08")],
            ),
            ([], [procedure(SNOMED, "305336008", performedDateTime="2025-08-08")]),
        ],
    )
    def test_ignores_what_is_not_esrd_evidence(self, conditions, procedures):
        assert esrd_periods(conditions, procedures, as_of=AS_OF) == ()


def claim_encounter(place: str) -> dict[str, Any]:
    row = {**CLAIM, "place_of_service": place}
    (found,) = [m.content for m in claim_resources(row, "p", True) if m.res_type == "Encounter"]
    return found


class TestStays:
    @pytest.mark.parametrize(
        ("resource", "expected"),
        [
            (
                encounter(MARCH, **{"class": {"system": ACT_CODE, "code": "IMP"}}),
                [days("2025-03-01", "2025-03-20")],
            ),
            (
                encounter(MARCH, **{"class": {"system": ACT_CODE, "code": "ACUTE"}}),
                [days("2025-03-01", "2025-03-20")],
            ),
            # a skilled-nursing place of service is a stay whatever the class says
            (
                encounter(
                    MARCH,
                    type=[concept(POS, "31")],
                    **{"class": {"system": ACT_CODE, "code": "AMB"}},
                ),
                [days("2025-03-01", "2025-03-20")],
            ),
            # a nursing facility (long-term care, drugs from Part D) is not
            (
                encounter(
                    MARCH,
                    type=[concept(POS, "32")],
                    **{"class": {"system": ACT_CODE, "code": "NONAC"}},
                ),
                [],
            ),
            (encounter(MARCH, **{"class": {"system": ACT_CODE, "code": "AMB"}}), []),
            # what the claims feed writes: admission (service date) to discharge
            (claim_encounter("21"), [days("2025-03-30", "2025-04-04")]),
            (claim_encounter("31"), [days("2025-03-30", "2025-04-04")]),
            (claim_encounter("23"), []),
            (claim_encounter("32"), []),
        ],
    )
    def test_inpatient_and_skilled_nursing_encounters_are_stays(self, resource, expected):
        assert list(stays_from_encounters([resource], as_of=AS_OF)) == expected


class TestDisenrollmentDate:
    @pytest.mark.parametrize(
        ("coverages", "expected"),
        [
            ([coverage("2025-06-30")], date(2025, 6, 30)),
            (
                [
                    coverage(
                        "2025-06-30T23:59:59Z",
                        drug=False,
                        **{
                            "class": [{"type": concept(COVERAGE_CLASS, "rxbin"), "value": "610014"}]
                        },
                    )
                ],
                date(2025, 6, 30),
            ),
            ([coverage("2024-12-31"), coverage("2025-06-30")], date(2025, 6, 30)),
            # a pharmacy coverage without an end: still enrolled
            ([coverage("2025-06-30"), coverage(None)], None),
            # medical coverage says nothing about the drug benefit
            ([coverage("2025-06-30", drug=False)], None),
            ([coverage("2025-06-30", status="entered-in-error")], None),
            ([], None),
        ],
    )
    def test_reads_the_end_of_pharmacy_coverage(self, coverages, expected):
        assert disenrollment_date(coverages) == expected

    def test_the_claims_feed_coverage_is_not_pharmacy_coverage(self):
        (found,) = [
            m.content for m in claim_resources(CLAIM, "p", True) if m.res_type == "Coverage"
        ]
        assert disenrollment_date([{**found, "period": {"end": "2025-03-01"}}]) is None


def lisinopril_every_quarter() -> list[Fill]:
    return [Fill(date(2025, m, 1), 90, LISINOPRIL) for m in (1, 4, 7, 10)]


class TestRecordEvents:
    def test_an_esrd_diagnosis_excludes_the_patient_from_pdc_rasa(self):
        record = PatientRecordResources(
            {"resourceType": "Patient", "birthDate": "1950-01-01"},
            conditions=(condition(ICD10CM, "N18.6", recordedDate="2025-06-01"),),
        )
        events = record_events(record, as_of=AS_OF)
        result = proportion_of_days_covered(
            lisinopril_every_quarter(), measure(MeasureId.PDC_RASA), YEAR, events=events
        )
        assert result.exclusion_reason is ExclusionReason.ESRD

    def test_reads_every_event_kind_together(self):
        record = PatientRecordResources(
            {
                "resourceType": "Patient",
                "birthDate": "1950-01-01",
                "deceasedDateTime": "2025-11-30T04:00:00Z",
            },
            encounters=(encounter(MARCH, **{"class": {"code": "IMP"}}),),
            episodes=(episode("385763009", period={"start": "2025-10-01"}),),
            procedures=(procedure(SNOMED, "71192002", performedDateTime="2025-02-02"),),
            coverages=(coverage("2025-10-31"),),
        )
        events = record_events(record, as_of=AS_OF)
        assert events.birth_date == date(1950, 1, 1)
        assert events.death_date == date(2025, 11, 30)
        assert events.stays == (days("2025-03-01", "2025-03-20"),)
        assert events.hospice == (days("2025-10-01", "2025-12-31"),)
        assert events.esrd == (days("2025-02-02", "2025-02-02"),)
        assert events.disenrollment_date == date(2025, 10, 31)

    def test_disenrollment_ends_the_treatment_period(self):
        record = PatientRecordResources(
            {"resourceType": "Patient"}, coverages=(coverage("2025-09-30"),)
        )
        result = proportion_of_days_covered(
            lisinopril_every_quarter(),
            measure(MeasureId.PDC_RASA),
            YEAR,
            events=record_events(record, as_of=AS_OF),
        )
        assert result.treatment_end == date(2025, 9, 30)
        assert result.days_in_period == (date(2025, 9, 30) - date(2025, 1, 1)).days + 1
