"""Pharmacy dispensing rows (one per fill, NCPDP Telecommunication D.0 fields) to FHIR R4 (pure).

Resources per row, each with its key (ids are UUIDv5 of it, `identity.resource_id`) and guidance:

- Patient, pharmacy member id (332-CY), only when the matching rule created it: US Core Patient.
- Organization and Location, store NCPDP provider id (201-B1): US Core Organization/Location,
  Location type v3 RoleCode PHARM.
- Practitioner, prescriber NPI (411-DB, qualifier 01): US Core Practitioner.
- Medication, RxNorm SCD + NDC dispensed (407-D7): US Core Medication.
- MedicationRequest, store + prescription number (402-D2): US Core MedicationRequest; the
  identifier has type FILL (v2-0203 filler identifier: the pharmacy assigned it).
- MedicationDispense, store + prescription number + refill number (403-D3): US Core
  MedicationDispense.

MedicationDispense (R4 medicationdispense.html): status `completed` (the fill was billed and handed
over), `type` from v3 ActPharmacySupplyType (FF first fill, RF refill; R4's example binding),
`quantity` = 442-E7, `daysSupply` = 405-D5 in UCUM `d`, `whenHandedOver` = date of service 401-D1,
`authorizingPrescription`, `location` and `performer` (the pharmacy). MedicationRequest holds only
what is the same on every fill of the prescription: date written (414-DE) as `authoredOn`, refills
authorized (415-DF) as `dispenseRequest.numberOfRepeatsAllowed`, the prescriber as `requester`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial
from typing import Any

from carebridge.ingest import identity
from carebridge.ingest.identity import resource_id, shared_resource_id
from carebridge.ingest.mappers import fields
from carebridge.ingest.mappers.fields import Row
from carebridge.ingest.mappers.patients import patient_resource, reference, source_patient
from carebridge.ingest.mappers.terminology import (
    NCPDP,
    NDC,
    NPI,
    ORGANIZATION_TYPE,
    RXNORM,
    UCUM,
    V2_0203,
    V3_ACT_CODE,
    V3_ROLE_CODE,
    coding,
    concept,
)
from carebridge.ingest.records import MappedResource, RowError, SourcePatient
from carebridge.kit.memo import computed_once

_NCPDP_ID = re.compile(r"^\d{7}$")
_RXCUI = re.compile(r"^\d{1,8}$")
_NDC11 = re.compile(r"^\d{11}$")


@dataclass(frozen=True)
class Fill:
    patient: SourcePatient
    postal_code: str | None
    store_id: str
    store_name: str
    prescriber_npi: str
    prescriber_given: str
    prescriber_family: str
    rxcui: str
    drug_name: str
    ndc11: str | None
    quantity: int | float
    days_supply: int
    fill_date: str
    refill_number: int
    refills_authorized: int
    prescription_number: str
    date_written: str

    @property
    def prescription_key(self) -> str:
        return f"{self.store_id}-{self.prescription_number}"

    @property
    def dispense_key(self) -> str:
        return f"{self.prescription_key}-{self.refill_number}"

    @computed_once
    def pharmacy_id(self) -> str:
        return shared_resource_id("Organization", NCPDP, self.store_id)

    @computed_once
    def location_id(self) -> str:
        return shared_resource_id("Location", NCPDP, self.store_id)

    @computed_once
    def prescriber_id(self) -> str:
        return shared_resource_id("Practitioner", NPI, self.prescriber_npi)

    @computed_once
    def medication_id(self) -> str:
        return shared_resource_id("Medication", RXNORM, self.rxcui, NDC, self.ndc11 or "")

    @computed_once
    def prescription_id(self) -> str:
        return resource_id("MedicationRequest", identity.PRESCRIPTION, self.prescription_key)

    @computed_once
    def dispense_id(self) -> str:
        return resource_id("MedicationDispense", identity.DISPENSE, self.dispense_key)


def fill_patient(row: Row) -> SourcePatient:
    """The patient of a fill: pharmacy member id first, then the payer member id if billed."""
    return source_patient(
        row,
        (identity.PHARMACY_MEMBER, "pharmacy_member_id"),
        (identity.PAYER_MEMBER, "payer_member_id"),
    )


def parse_fill(row: Row) -> Fill:
    fill = Fill(
        patient=fill_patient(row),
        postal_code=fields.optional(row, "patient_postal_code"),
        store_id=fields.pattern(row, "store_ncpdp_id", _NCPDP_ID, "a 7-digit NCPDP provider id"),
        store_name=fields.text(row, "store_name"),
        prescriber_npi=fields.npi(row, "prescriber_npi"),
        prescriber_given=fields.text(row, "prescriber_first_name"),
        prescriber_family=fields.text(row, "prescriber_last_name"),
        rxcui=fields.pattern(row, "rxcui", _RXCUI, "an RxNorm RXCUI"),
        drug_name=fields.text(row, "drug_name"),
        ndc11=fields.optional_pattern(row, "ndc11", _NDC11, "an 11-digit NDC"),
        quantity=fields.quantity(row, "quantity_dispensed"),
        days_supply=fields.integer(row, "days_supply"),
        fill_date=fields.iso_date(row, "fill_date"),
        refill_number=fields.integer(row, "refill_number"),
        refills_authorized=fields.integer(row, "refills_authorized"),
        prescription_number=fields.text(row, "prescription_number"),
        date_written=fields.iso_date(row, "date_written"),
    )
    _check(fill)
    return fill


def _check(fill: Fill) -> None:
    if fill.days_supply < 1:
        raise RowError("days_supply: must be at least 1")
    if fill.refill_number > fill.refills_authorized:
        raise RowError("refill_number: exceeds refills_authorized")
    if fill.fill_date < fill.date_written:
        raise RowError("fill_date: before date_written")


def fill_resources(row: Row, patient_id: str, owns_patient: bool) -> list[MappedResource]:
    """Every resource of one dispensing row; `owns_patient` when this feed created the Patient."""
    fill = parse_fill(row)
    resources = [
        MappedResource("Organization", fill.pharmacy_id, partial(pharmacy, fill), True),
        MappedResource("Location", fill.location_id, partial(store, fill), True),
        MappedResource("Practitioner", fill.prescriber_id, partial(prescriber, fill), True),
        MappedResource("Medication", fill.medication_id, partial(medication, fill), True),
        MappedResource(
            "MedicationRequest", fill.prescription_id, partial(prescription, fill, patient_id), True
        ),
        MappedResource("MedicationDispense", fill.dispense_id, partial(dispense, fill, patient_id)),
    ]
    if owns_patient:
        build = partial(patient_resource, patient_id, fill.patient, postal_code=fill.postal_code)
        resources.insert(0, MappedResource("Patient", patient_id, build, True))
    return resources


def pharmacy(fill: Fill) -> dict[str, Any]:
    return {
        "resourceType": "Organization",
        "id": fill.pharmacy_id,
        "identifier": [{"system": NCPDP, "value": fill.store_id}],
        "active": True,
        "type": [concept(ORGANIZATION_TYPE, "prov", "Healthcare Provider")],
        "name": fill.store_name,
    }


def store(fill: Fill) -> dict[str, Any]:
    return {
        "resourceType": "Location",
        "id": fill.location_id,
        "identifier": [{"system": NCPDP, "value": fill.store_id}],
        "status": "active",
        "name": fill.store_name,
        "mode": "instance",
        "type": [concept(V3_ROLE_CODE, "PHARM", "Pharmacy")],
        "managingOrganization": reference("Organization", fill.pharmacy_id),
    }


def prescriber(fill: Fill) -> dict[str, Any]:
    return {
        "resourceType": "Practitioner",
        "id": fill.prescriber_id,
        "identifier": [{"system": NPI, "value": fill.prescriber_npi}],
        "name": [{"family": fill.prescriber_family, "given": [fill.prescriber_given]}],
    }


def medication(fill: Fill) -> dict[str, Any]:
    codings = [coding(RXNORM, fill.rxcui, fill.drug_name)]
    if fill.ndc11:
        codings.append(coding(NDC, fill.ndc11))
    return {
        "resourceType": "Medication",
        "id": fill.medication_id,
        "code": {"coding": codings, "text": fill.drug_name},
    }


def prescription(fill: Fill, patient_id: str) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": fill.prescription_id,
        "identifier": [
            {
                "type": concept(V2_0203, "FILL", "Filler Identifier"),
                "system": identity.PRESCRIPTION,
                "value": fill.prescription_key,
            }
        ],
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [coding(RXNORM, fill.rxcui, fill.drug_name)],
            "text": fill.drug_name,
        },
        "subject": reference("Patient", patient_id),
        "authoredOn": fill.date_written,
        "requester": reference("Practitioner", fill.prescriber_id, _full_name(fill)),
        "dispenseRequest": {
            "numberOfRepeatsAllowed": fill.refills_authorized,
            "performer": reference("Organization", fill.pharmacy_id),
        },
    }


def dispense(fill: Fill, patient_id: str) -> dict[str, Any]:
    first = fill.refill_number == 0
    return {
        "resourceType": "MedicationDispense",
        "id": fill.dispense_id,
        "identifier": [{"system": identity.DISPENSE, "value": fill.dispense_key}],
        "status": "completed",
        "medicationReference": reference("Medication", fill.medication_id, fill.drug_name),
        "subject": reference("Patient", patient_id),
        "performer": [{"actor": reference("Organization", fill.pharmacy_id)}],
        "location": reference("Location", fill.location_id),
        "authorizingPrescription": [reference("MedicationRequest", fill.prescription_id)],
        "type": concept(V3_ACT_CODE, "FF" if first else "RF", "First Fill" if first else "Refill"),
        "quantity": {"value": fill.quantity},
        "daysSupply": {"value": fill.days_supply, "unit": "days", "system": UCUM, "code": "d"},
        "whenHandedOver": fill.fill_date,
    }


def _full_name(fill: Fill) -> str:
    return f"{fill.prescriber_given} {fill.prescriber_family}"
