"""Payer claims rows (one per claim: CMS-1500/837P professional, UB-04/837I institutional) to
FHIR R4 resources (pure).

Resources per row, each with its key (ids are UUIDv5 of it) and the guidance followed:

- Patient, payer member id (CMS-1500 1a), only when the matching rule created it: US Core Patient.
- Organization, payer id: US Core Organization, organization-type `pay`.
- Coverage, payer id + member id: US Core Coverage (memberid v2-0203 MB, subscriberId, payor).
- Encounter, patient + class + start date for an ER visit or a stay, else payer id + claim id: US
  Core Encounter, class from the CMS place of service.
- Condition, claim + diagnosis position: US Core Condition Encounter Diagnosis, ICD-10-CM.
- ExplanationOfBenefit, payer id + claim id: CARIN BB (`benefit.py`).

Encounter (R4 encounter.html): `class` from the place of service (23 EMER, 21 IMP, 31 NONAC, 11
and 81 AMB, see `terminology.PLACES_OF_SERVICE`), `type` = the CMS place-of-service code, `period` =
service (admission) date to discharge date (the service date for single-day claims),
`hospitalization.dischargeDisposition` = UB-04 FL17, `diagnosis` = the claim's ICD-10-CM codes in
billing order (`diagnosis-role` billing, rank = position). Claims carry no encounter id: the
facility and physician claims of one ER visit or stay share the visit's Encounter, each adding
what it knows (`visits.py`); an office or lab claim has its own. Providers are referenced by
NPI (R4 references.html, logical references), since a claim names them by NPI only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial
from typing import Any

from carebridge.ingest import identity
from carebridge.ingest.identity import resource_id, shared_resource_id
from carebridge.ingest.mappers import benefit, fields
from carebridge.ingest.mappers.fields import Row
from carebridge.ingest.mappers.patients import (
    identifier_element,
    patient_resource,
    reference,
    source_patient,
)
from carebridge.ingest.mappers.terminology import (
    CONDITION_CATEGORY,
    DIAGNOSIS_ROLE,
    ICD10CM,
    NPI,
    NUBC_DISCHARGE,
    ORGANIZATION_TYPE,
    PLACES_OF_SERVICE,
    POS,
    SUBSCRIBER_RELATIONSHIP,
    PlaceOfService,
    class_coding,
    concept,
)
from carebridge.ingest.mappers.visits import is_visit_class, visit_encounter_id
from carebridge.ingest.records import Identifier, MappedResource, RowError, SourcePatient
from carebridge.kit.memo import computed_once

ICD10CM_CODE = re.compile(r"^[A-TV-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$")
CPT_HCPCS_CODE = re.compile(r"^([0-9]{4}[0-9A-Z]|[A-V][0-9]{4})$")
_BILL_TYPE = re.compile(r"^0?[1-8][1-9][0-9A-Z]$")
_REVENUE_CODE = re.compile(r"^[0-9]{4}$")
_DISCHARGE_STATUS = re.compile(r"^[0-9]{2}$")
CLAIM_TYPES = ("professional", "institutional")


@dataclass(frozen=True)
class ClaimLine:
    patient: SourcePatient
    claim_id: str
    claim_type: str
    bill_type: str | None
    place: PlaceOfService
    payer_id: str
    payer_name: str
    provider_npi: str
    service_date: str
    discharge_date: str | None
    discharge_status: str | None
    diagnoses: tuple[tuple[int, str], ...]  # (position 1-4, ICD-10-CM code)
    procedure_code: str | None
    revenue_code: str | None
    billed: float
    paid: float

    @property
    def key(self) -> str:
        return f"{self.payer_id}-{self.claim_id}"

    @property
    def member(self) -> Identifier:
        return self.patient.primary

    @property
    def end_date(self) -> str:
        return self.discharge_date or self.service_date

    @computed_once
    def payer_org_id(self) -> str:
        return shared_resource_id("Organization", identity.PAYER, self.payer_id)

    @computed_once
    def coverage_id(self) -> str:
        return resource_id("Coverage", self.payer_id, self.member.system, self.member.value)

    @property
    def shares_encounter(self) -> bool:
        """Whether the claim bills a visit other claims bill too (visits.py)."""
        return is_visit_class(self.place.encounter_class)

    def encounter_id(self, patient_id: str) -> str:
        """The visit's Encounter when `shares_encounter`, else the claim's own."""
        if self.shares_encounter:
            return visit_encounter_id(patient_id, self.place.encounter_class, self.service_date)
        return resource_id("Encounter", identity.CLAIM, self.key)

    @property
    def payer_ref(self) -> dict[str, str]:
        return reference("Organization", self.payer_org_id)

    @property
    def coverage_ref(self) -> dict[str, str]:
        return reference("Coverage", self.coverage_id)

    def encounter_ref(self, patient_id: str) -> dict[str, str]:
        return reference("Encounter", self.encounter_id(patient_id))

    def condition_id(self, position: int) -> str:
        return resource_id("Condition", identity.CLAIM, self.key, str(position))

    @property
    def provider_ref(self) -> dict[str, Any]:
        """Logical reference by NPI: the rendering practitioner or the billing facility."""
        kind = "Organization" if self.claim_type == "institutional" else "Practitioner"
        return {"type": kind, "identifier": {"system": NPI, "value": self.provider_npi}}


def claim_patient(row: Row) -> SourcePatient:
    return source_patient(row, (identity.PAYER_MEMBER, "payer_member_id"))


def parse_claim(row: Row) -> ClaimLine:
    claim_type = fields.text(row, "claim_type")
    if claim_type not in CLAIM_TYPES:
        raise RowError("claim_type: not professional or institutional")
    claim = ClaimLine(
        patient=claim_patient(row),
        claim_id=fields.text(row, "claim_id"),
        claim_type=claim_type,
        bill_type=fields.optional_pattern(row, "bill_type", _BILL_TYPE, "a UB-04 type of bill"),
        place=_place(row),
        payer_id=fields.text(row, "payer_id"),
        payer_name=fields.text(row, "payer_name"),
        provider_npi=fields.npi(row, "provider_npi"),
        service_date=fields.iso_date(row, "service_date"),
        discharge_date=fields.optional_date(row, "discharge_date"),
        discharge_status=fields.optional_pattern(
            row, "discharge_status", _DISCHARGE_STATUS, "a 2-digit UB-04 discharge status"
        ),
        diagnoses=_diagnoses(row),
        procedure_code=fields.optional_pattern(
            row, "procedure_code", CPT_HCPCS_CODE, "a CPT or HCPCS code"
        ),
        revenue_code=fields.optional_pattern(
            row, "revenue_code", _REVENUE_CODE, "a 4-digit revenue code"
        ),
        billed=fields.amount(row, "billed_amount"),
        paid=fields.amount(row, "paid_amount"),
    )
    _check(claim)
    return claim


def _place(row: Row) -> PlaceOfService:
    place = PLACES_OF_SERVICE.get(fields.text(row, "place_of_service"))
    if place is None:
        raise RowError("place_of_service: not a supported CMS place-of-service code")
    return place


def _diagnoses(row: Row) -> tuple[tuple[int, str], ...]:
    found = [(1, fields.pattern(row, "diagnosis_1", ICD10CM_CODE, "an ICD-10-CM code"))]
    for position in (2, 3, 4):
        name = f"diagnosis_{position}"
        code = fields.optional_pattern(row, name, ICD10CM_CODE, "an ICD-10-CM code")
        if code:
            found.append((position, code))
    return tuple(found)


def _check(claim: ClaimLine) -> None:
    if claim.claim_type == "institutional" and claim.bill_type is None:
        raise RowError("bill_type: required on institutional claims")
    if claim.discharge_date and claim.discharge_date < claim.service_date:
        raise RowError("discharge_date: before service_date")


def claim_resources(row: Row, patient_id: str, owns_patient: bool) -> list[MappedResource]:
    """Every resource of one claims row; `owns_patient` when this feed created the Patient."""
    claim = parse_claim(row)
    resources = [
        MappedResource("Organization", claim.payer_org_id, partial(payer, claim), True),
        MappedResource("Coverage", claim.coverage_id, partial(coverage, claim, patient_id), True),
        MappedResource(
            "Encounter",
            claim.encounter_id(patient_id),
            partial(encounter, claim, patient_id),
            merged=claim.shares_encounter,
        ),
        *(
            MappedResource(
                "Condition",
                claim.condition_id(position),
                partial(condition, claim, patient_id, position, code),
            )
            for position, code in claim.diagnoses
        ),
        MappedResource(
            "ExplanationOfBenefit",
            benefit.benefit_id(claim),
            partial(benefit.explanation_of_benefit, claim, patient_id),
        ),
    ]
    if owns_patient:
        build = partial(patient_resource, patient_id, claim.patient)
        resources.insert(0, MappedResource("Patient", patient_id, build, True))
    return resources


def payer(claim: ClaimLine) -> dict[str, Any]:
    return {
        "resourceType": "Organization",
        "id": claim.payer_org_id,
        "identifier": [{"system": identity.PAYER, "value": claim.payer_id}],
        "active": True,
        "type": [concept(ORGANIZATION_TYPE, "pay", "Payer")],
        "name": claim.payer_name,
    }


def coverage(claim: ClaimLine, patient_id: str) -> dict[str, Any]:
    return {
        "resourceType": "Coverage",
        "id": claim.coverage_id,
        "identifier": [identifier_element(claim.member)],
        "status": "active",
        "subscriberId": claim.member.value,
        "beneficiary": reference("Patient", patient_id),
        "relationship": concept(SUBSCRIBER_RELATIONSHIP, "self", "Self"),
        "payor": [{**claim.payer_ref, "display": claim.payer_name}],
    }


def encounter(claim: ClaimLine, patient_id: str) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": claim.encounter_id(patient_id),
        "identifier": [{"system": identity.CLAIM, "value": claim.key}],
        "status": "finished",
        "class": class_coding(claim.place.encounter_class),
        "type": [concept(POS, claim.place.code, claim.place.display)],
        "subject": reference("Patient", patient_id),
        "period": {"start": claim.service_date, "end": claim.end_date},
        "diagnosis": [
            {
                "condition": reference("Condition", claim.condition_id(position)),
                "use": concept(DIAGNOSIS_ROLE, "billing", "Billing"),
                "rank": position,
            }
            for position, _ in claim.diagnoses
        ],
    }
    if claim.discharge_status:
        disposition = concept(NUBC_DISCHARGE, claim.discharge_status)
        resource["hospitalization"] = {"dischargeDisposition": disposition}
    if claim.claim_type == "institutional":
        resource["serviceProvider"] = claim.provider_ref
    else:
        resource["participant"] = [{"individual": claim.provider_ref}]
    return resource


def condition(claim: ClaimLine, patient_id: str, position: int, code: str) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": claim.condition_id(position),
        "category": [concept(CONDITION_CATEGORY, "encounter-diagnosis", "Encounter Diagnosis")],
        "code": concept(ICD10CM, code),
        "subject": reference("Patient", patient_id),
        "encounter": claim.encounter_ref(patient_id),
        "recordedDate": claim.service_date,
    }
