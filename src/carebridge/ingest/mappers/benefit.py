"""ExplanationOfBenefit for an adjudicated claim (pure), after the CARIN Blue Button IG (C4BB).

A payer feed carries adjudicated claims (billed and paid amounts), so each row is an R4
ExplanationOfBenefit (explanationofbenefit.html), shaped after the CARIN BB profiles
(http://hl7.org/fhir/us/carin-bb/): C4BB ExplanationOfBenefit Inpatient/Outpatient Institutional
for UB-04 claims and Professional NonClinician for CMS-1500 claims. What it follows:

- `identifier` the payer's claim number, type `uc` (unique claim id, C4BBIdentifierType);
- `type` claim-type `institutional`/`professional`; for institutional claims `subType`
  inpatient/outpatient (C4BBInstitutionalClaimSubType) from the type of bill's classification
  digit (1-2 inpatient, else outpatient; NUBC UB-04 FL4);
- `billablePeriod` service (admission) to discharge date; `created` has no column in the feed and
  is set to the end of that period;
- `insurer` the payer Organization, `provider` the rendering or facility NPI, `insurance` the
  member's Coverage (focal), `outcome` complete;
- `supportingInfo` type of bill, discharge status and admission period (C4BBSupportingInfoType
  with NUBC codes) on institutional claims;
- `diagnosis` ICD-10-CM, type principal for position 1, secondary after (C4BBClaimDiagnosisType);
- one `item`: CPT/HCPCS code as `productOrService` (data-absent-reason `not-applicable` when the
  claim has none, as on inpatient facility claims), revenue code (NUBC), serviced date or period,
  place of service as `locationCodeableConcept`, and the Encounter;
- `total` submitted (billed) and benefit (paid) amounts in USD (R4 adjudication codes), `payment`.

It is not validated against the C4BB profiles: the feed lacks fields they require (e.g. the
adjudication per line and payment status).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from carebridge.ingest import identity
from carebridge.ingest.identity import resource_id
from carebridge.ingest.mappers.patients import reference
from carebridge.ingest.mappers.terminology import (
    ADJUDICATION,
    C4BB_DIAGNOSIS_TYPE,
    C4BB_IDENTIFIER_TYPE,
    C4BB_INSTITUTIONAL_SUBTYPE,
    C4BB_SUPPORTING_INFO,
    CLAIM_TYPE,
    CPT,
    DATA_ABSENT_REASON,
    HCPCS,
    ICD10CM,
    NUBC_DISCHARGE,
    NUBC_REVENUE,
    NUBC_TYPE_OF_BILL,
    POS,
    concept,
)

if TYPE_CHECKING:
    from carebridge.ingest.mappers.claims import ClaimLine


def benefit_id(claim: ClaimLine) -> str:
    return resource_id("ExplanationOfBenefit", identity.CLAIM, claim.key)


def explanation_of_benefit(claim: ClaimLine, patient_id: str) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "ExplanationOfBenefit",
        "id": benefit_id(claim),
        "identifier": [
            {
                "type": concept(C4BB_IDENTIFIER_TYPE, "uc", "Unique Claim ID"),
                "system": identity.CLAIM,
                "value": claim.key,
            }
        ],
        "status": "active",
        "type": concept(CLAIM_TYPE, claim.claim_type, claim.claim_type.capitalize()),
        "use": "claim",
        "patient": reference("Patient", patient_id),
        "billablePeriod": {"start": claim.service_date, "end": claim.end_date},
        "created": claim.end_date,
        "insurer": {**claim.payer_ref, "display": claim.payer_name},
        "provider": claim.provider_ref,
        "outcome": "complete",
        "insurance": [{"focal": True, "coverage": claim.coverage_ref}],
        "diagnosis": [_diagnosis(position, code) for position, code in claim.diagnoses],
        "item": [_item(claim, patient_id)],
        "total": [
            _total("submitted", "Submitted Amount", claim.billed),
            _total("benefit", "Benefit Amount", claim.paid),
        ],
        "payment": {"amount": _money(claim.paid)},
    }
    if claim.claim_type == "institutional":
        resource["subType"] = _institutional_subtype(claim)
        resource["supportingInfo"] = _supporting_info(claim)
    return resource


def _institutional_subtype(claim: ClaimLine) -> dict[str, Any]:
    classification = (claim.bill_type or "").lstrip("0")[1:2]
    code = "inpatient" if classification in ("1", "2") else "outpatient"
    return concept(C4BB_INSTITUTIONAL_SUBTYPE, code, code.capitalize())


def _supporting_info(claim: ClaimLine) -> list[dict[str, Any]]:
    info: list[dict[str, Any]] = []
    if claim.bill_type:
        info.append(_info("typeofbill", "Type of Bill", code=(NUBC_TYPE_OF_BILL, claim.bill_type)))
    if claim.discharge_status:
        status = (NUBC_DISCHARGE, claim.discharge_status)
        info.append(_info("discharge-status", "Discharge Status", code=status))
    if claim.discharge_date:
        period = {"start": claim.service_date, "end": claim.discharge_date}
        info.append(_info("admissionperiod", "Admission Period", period=period))
    for sequence, entry in enumerate(info, start=1):
        entry["sequence"] = sequence
    return info


def _info(
    category: str,
    display: str,
    *,
    code: tuple[str, str] | None = None,
    period: dict[str, str] | None = None,
) -> dict[str, Any]:
    entry: dict[str, Any] = {"category": concept(C4BB_SUPPORTING_INFO, category, display)}
    if code:
        entry["code"] = concept(*code)
    if period:
        entry["timingPeriod"] = period
    return entry


def _diagnosis(position: int, code: str) -> dict[str, Any]:
    kind = "principal" if position == 1 else "secondary"
    return {
        "sequence": position,
        "diagnosisCodeableConcept": concept(ICD10CM, code),
        "type": [concept(C4BB_DIAGNOSIS_TYPE, kind, kind.capitalize())],
    }


def _item(claim: ClaimLine, patient_id: str) -> dict[str, Any]:
    item: dict[str, Any] = {
        "sequence": 1,
        "diagnosisSequence": [position for position, _ in claim.diagnoses],
        "productOrService": _product(claim.procedure_code),
        "locationCodeableConcept": concept(POS, claim.place.code, claim.place.display),
        "encounter": [claim.encounter_ref(patient_id)],
    }
    if claim.revenue_code:
        item["revenue"] = concept(NUBC_REVENUE, claim.revenue_code)
    if claim.discharge_date:
        item["servicedPeriod"] = {"start": claim.service_date, "end": claim.discharge_date}
    else:
        item["servicedDate"] = claim.service_date
    return item


def _product(code: str | None) -> dict[str, Any]:
    """CPT (5 digits, or 4 digits and a letter) or HCPCS Level II (a letter and 4 digits)."""
    if not code:
        return concept(DATA_ABSENT_REASON, "not-applicable", "Not Applicable")
    return concept(HCPCS if code[0].isalpha() else CPT, code)


def _total(code: str, display: str, value: float) -> dict[str, Any]:
    return {"category": concept(ADJUDICATION, code, display), "amount": _money(value)}


def _money(value: float) -> dict[str, Any]:
    return {"value": value, "currency": "USD"}
