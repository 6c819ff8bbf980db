"""FHIR resources for the adherence API, service and CLI tests (hand-computed expectations)."""

from __future__ import annotations

from typing import Any

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LISINOPRIL, ATORVASTATIN, VALSARTAN, SACUBITRIL = "29046", "83367", "69749", "1656328"

Resource = dict[str, Any]


def patient(pid: str, **extra: Any) -> Resource:
    return {"resourceType": "Patient", "id": pid, "birthDate": "1960-05-01", **extra}


def concept(rxcui: str) -> Resource:
    return {"coding": [{"system": RXNORM, "code": rxcui}]}


def dispense(
    did: str,
    pid: str,
    day: str,
    days: int,
    rxcui: str | None = None,
    *,
    status: str = "completed",
    **extra: Any,
) -> Resource:
    resource: Resource = {
        "resourceType": "MedicationDispense",
        "id": did,
        "status": status,
        "subject": {"reference": f"Patient/{pid}"},
        "whenHandedOver": f"{day}T10:00:00Z",
        "daysSupply": {
            "value": days,
            "unit": "days",
            "system": "http://unitsofmeasure.org",
            "code": "d",
        },
        **extra,
    }
    if rxcui is not None:
        resource["medicationCodeableConcept"] = concept(rxcui)
    return resource


ATORVASTATIN_MEDICATION: Resource = {
    "resourceType": "Medication",
    "id": "atorvastatin",
    "code": {"text": "atorvastatin calcium 20 MG Oral Tablet"},
    "ingredient": [{"itemCodeableConcept": concept(ATORVASTATIN)}],
}


def adherent_statin_lapsing_ras_patient() -> list[Resource]:
    """Patient "p1", measurement year 2025.

    PDC-RASA, lisinopril 90 days on 01-01, 04-01 and 07-15: covered 01-01..03-31 (90),
    04-01..06-29 (90), 07-15..10-12 (90) = 270 of 365 days, PDC 0.7397, not adherent.
    PDC-STA, atorvastatin 100 days on 01-10, 04-15, 07-20, 10-25 (a referenced Medication, the
    last one contained): each overlapping fill shifts to the day after the previous supply, so
    01-10..12-31 is covered entirely: 356 of 356, PDC 1.0. PDC-DR: no fills, not eligible.
    """
    statin = {"medicationReference": {"reference": "Medication/atorvastatin"}}
    contained = {
        "contained": [{**ATORVASTATIN_MEDICATION, "id": "med"}],
        "medicationReference": {"reference": "#med"},
    }
    return [
        patient("p1", telecom=[{"system": "email", "value": "p1@example.org"}]),
        ATORVASTATIN_MEDICATION,
        dispense("d1", "p1", "2025-01-01", 90, LISINOPRIL),
        dispense("d2", "p1", "2025-04-01", 90, LISINOPRIL),
        dispense("d3", "p1", "2025-07-15", 90, LISINOPRIL),
        dispense("s1", "p1", "2025-01-10", 100, **statin),
        dispense("s2", "p1", "2025-04-15", 100, **statin),
        dispense("s3", "p1", "2025-07-20", 100, **statin),
        dispense("s4", "p1", "2025-10-25", 100, **contained),
        dispense("x1", "p1", "2025-02-01", 90, LISINOPRIL, status="cancelled"),
    ]


def excluded_patient() -> list[Resource]:
    """Patient "p2": valsartan twice, then sacubitril/valsartan in the treatment period."""
    return [
        patient("p2"),
        dispense("v1", "p2", "2025-01-05", 90, VALSARTAN),
        dispense("v2", "p2", "2025-04-05", 90, VALSARTAN),
        dispense("v3", "p2", "2025-06-01", 30, SACUBITRIL),
    ]


def deceased_inpatient_patient() -> list[Resource]:
    """Patient "p3" died 2025-06-30, inpatient 02-01..02-10 (10 days).

    Lisinopril 90 days on 01-01 and 04-01. Treatment period 01-01..06-30 = 181 days, less 10 stay
    days = 171 at risk. Supply held during the stay: 01-01..01-31 (31), then 02-11..04-10 (59);
    the 04-01 fill shifts to 04-11..06-30 (81, cut at death). 171 of 171, PDC 1.0.
    """
    return [
        patient("p3", deceasedDateTime="2025-06-30T08:00:00Z"),
        dispense("q1", "p3", "2025-01-01", 90, LISINOPRIL),
        dispense("q2", "p3", "2025-04-01", 90, LISINOPRIL),
        {
            "resourceType": "Encounter",
            "id": "e1",
            "status": "finished",
            "class": {
                "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                "code": "IMP",
            },
            "subject": {"reference": "Patient/p3"},
            "period": {"start": "2025-02-01T09:00:00Z", "end": "2025-02-10T12:00:00Z"},
        },
        {
            "resourceType": "Encounter",
            "id": "e2",
            "status": "finished",
            "class": {
                "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                "code": "AMB",
            },
            "subject": {"reference": "Patient/p3"},
            "period": {"start": "2025-03-01T09:00:00Z", "end": "2025-03-01T10:00:00Z"},
        },
    ]


def quarterly_lisinopril_patient(pid: str) -> list[Resource]:
    """Lisinopril 90 days on 01-01, 04-01, 07-01 and 10-01 of 2025: 360 of 365 days covered."""
    return [
        patient(pid),
        *(
            dispense(f"{pid}-d{n}", pid, day, 90, LISINOPRIL)
            for n, day in enumerate(("2025-01-01", "2025-04-01", "2025-07-01", "2025-10-01"))
        ),
    ]


def esrd_condition(cid: str, pid: str, code: str = "N18.6") -> Resource:
    return {
        "resourceType": "Condition",
        "id": cid,
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": code}]},
        "subject": {"reference": f"Patient/{pid}"},
        "recordedDate": "2025-05-14",
    }


def hospice_episode(eid: str, pid: str) -> Resource:
    return {
        "resourceType": "EpisodeOfCare",
        "id": eid,
        "status": "active",
        "type": [{"coding": [{"system": "http://snomed.info/sct", "code": "385763009"}]}],
        "patient": {"reference": f"Patient/{pid}"},
        "period": {"start": "2025-11-15"},
    }


def part_d_coverage(cid: str, pid: str, end: str) -> Resource:
    return {
        "resourceType": "Coverage",
        "id": cid,
        "status": "active",
        "type": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "DRUGPOL"}
            ]
        },
        "beneficiary": {"reference": f"Patient/{pid}"},
        "payor": [{"display": "Part D plan"}],
        "period": {"start": "2024-01-01", "end": end},
    }
