"""Patients named by a feed row (pure): the record's identity, and the Patient a feed creates.

A Patient created by a CSV feed carries only that feed's own identifier and the demographics of
the row (US Core Patient: identifier, name, gender; birthDate and address when known), so its
content is the same on every row of the member and re-running a file changes nothing. Other
identifiers a row carries (the payer member id on a pharmacy fill) are linked to the patient in
the ingest patient index instead (docs/ingest.md).
"""

from __future__ import annotations

from typing import Any

from carebridge.ingest.mappers import fields
from carebridge.ingest.mappers.fields import Row
from carebridge.ingest.mappers.terminology import V2_0203, coding
from carebridge.ingest.records import Demographics, Identifier, SourcePatient

GENDER = {"M": "male", "F": "female", "U": "unknown"}
SEX = {"male": "M", "female": "F"}
IDENTIFIER_TYPE = {
    "pharmacy-member": ("PI", "Patient internal identifier"),
    "payer-member": ("MB", "Member Number"),
}


def demographics(row: Row) -> Demographics:
    return Demographics(
        family=fields.text(row, "patient_last_name"),
        given=fields.text(row, "patient_first_name"),
        birth_date=fields.iso_date(row, "patient_birth_date"),
        sex=fields.sex(row, "patient_sex"),
    )


def source_patient(row: Row, primary: tuple[str, str], *others: tuple[str, str]) -> SourcePatient:
    """The row's patient: `primary` and `others` are (identifier system, column) pairs."""
    system, column = primary
    extra = tuple(
        Identifier(sys, value) for sys, col in others if (value := fields.optional(row, col))
    )
    return SourcePatient(Identifier(system, fields.text(row, column)), extra, demographics(row))


def patient_resource(
    patient_id: str, patient: SourcePatient, *, postal_code: str | None = None
) -> dict[str, Any]:
    """The Patient a feed creates for a record nobody else knows (US Core Patient)."""
    person = patient.demographics
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": patient_id,
        "identifier": [identifier_element(patient.primary)],
        "name": [{"family": person.family, "given": [person.given]}],
        "gender": GENDER[person.sex],
        "birthDate": person.birth_date,
    }
    if postal_code:
        resource["address"] = [{"postalCode": postal_code, "country": "US"}]
    return resource


def identifier_element(identifier: Identifier) -> dict[str, Any]:
    element: dict[str, Any] = {"system": identifier.system, "value": identifier.value}
    kind = IDENTIFIER_TYPE.get(identifier.system.rsplit("/", 1)[-1])
    if kind:
        element["type"] = {"coding": [coding(V2_0203, *kind)]}
    return element


def reference(res_type: str, res_id: str, display: str | None = None) -> dict[str, str]:
    found = {"reference": f"{res_type}/{res_id}"}
    if display:
        found["display"] = display
    return found
