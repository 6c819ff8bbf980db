"""Code systems, identifier systems and code tables the mappers write (pure data).

Sources:
- HL7 FHIR R4 terminology (http://hl7.org/fhir/R4/terminologies-systems.html): RxNorm, NDC,
  NPI, ICD-10-CM, UCUM, CPT and the terminology.hl7.org code systems below.
- NCPDP Provider Identification Number: HL7 THO NamingSystem
  `NCPDPProviderIdentificationNumber` (7 digits, formerly the NABP number).
- CMS Place of Service code set
  (https://www.cms.gov/medicare/coding-billing/place-of-service-codes/code-sets), with the system
  URI the CARIN Blue Button IG uses for it.
- NUBC UB-04 type of bill, revenue code and patient discharge status, with the CARIN BB URIs.
- Encounter.class: HL7 v3 ActEncounterCode (R4 value set `v3-ActEncounterCode`).
"""

from __future__ import annotations

from dataclasses import dataclass

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
NDC = "http://hl7.org/fhir/sid/ndc"
NPI = "http://hl7.org/fhir/sid/us-npi"
NCPDP = "http://terminology.hl7.org/NamingSystem/NCPDPProviderIdentificationNumber"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
UCUM = "http://unitsofmeasure.org"
CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
POS = "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"
NUBC_TYPE_OF_BILL = "https://www.nubc.org/CodeSystem/TypeOfBill"
NUBC_REVENUE = "https://www.nubc.org/CodeSystem/RevenueCodes"
NUBC_DISCHARGE = "https://www.nubc.org/CodeSystem/PatDischargeStatus"

_THO = "http://terminology.hl7.org/CodeSystem"
V2_0203 = f"{_THO}/v2-0203"
V3_ACT_CODE = f"{_THO}/v3-ActCode"
V3_ROLE_CODE = f"{_THO}/v3-RoleCode"
ORGANIZATION_TYPE = f"{_THO}/organization-type"
CLAIM_TYPE = f"{_THO}/claim-type"
ADJUDICATION = f"{_THO}/adjudication"
CONDITION_CATEGORY = f"{_THO}/condition-category"
DIAGNOSIS_ROLE = f"{_THO}/diagnosis-role"
SUBSCRIBER_RELATIONSHIP = f"{_THO}/subscriber-relationship"
DATA_ABSENT_REASON = f"{_THO}/data-absent-reason"

_C4BB = "http://hl7.org/fhir/us/carin-bb/CodeSystem"
C4BB_IDENTIFIER_TYPE = f"{_C4BB}/C4BBIdentifierType"
C4BB_INSTITUTIONAL_SUBTYPE = f"{_C4BB}/C4BBInstitutionalClaimSubType"
C4BB_DIAGNOSIS_TYPE = f"{_C4BB}/C4BBClaimDiagnosisType"
C4BB_SUPPORTING_INFO = f"{_C4BB}/C4BBSupportingInfoType"


def coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    found = {"system": system, "code": code}
    if display:
        found["display"] = display
    return found


def concept(system: str, code: str, display: str | None = None) -> dict[str, object]:
    return {"coding": [coding(system, code, display)]}


@dataclass(frozen=True)
class PlaceOfService:
    code: str
    display: str
    encounter_class: str  # v3 ActEncounterCode


_CLASS_DISPLAY = {
    "AMB": "ambulatory",
    "EMER": "emergency",
    "HH": "home health",
    "IMP": "inpatient encounter",
    "NONAC": "inpatient non-acute",
    "VR": "virtual",
}


def class_coding(code: str) -> dict[str, str]:
    return coding(V3_ACT_CODE, code, _CLASS_DISPLAY[code])


def _places(*rows: tuple[str, str, str]) -> dict[str, PlaceOfService]:
    return {code: PlaceOfService(code, display, cls) for code, display, cls in rows}


# The CMS codes a pharmacy network's members are billed under; any other code is refused with a
# dead letter rather than guessed. Facility settings map to inpatient classes (IMP acute, NONAC
# skilled nursing / long-term care), the emergency room to EMER, telehealth to VR, the rest to AMB.
PLACES_OF_SERVICE = _places(
    ("01", "Pharmacy", "AMB"),
    ("02", "Telehealth Provided Other than in Patient's Home", "VR"),
    ("10", "Telehealth Provided in Patient's Home", "VR"),
    ("11", "Office", "AMB"),
    ("12", "Home", "HH"),
    ("17", "Walk-in Retail Health Clinic", "AMB"),
    ("19", "Off Campus-Outpatient Hospital", "AMB"),
    ("20", "Urgent Care Facility", "AMB"),
    ("21", "Inpatient Hospital", "IMP"),
    ("22", "On Campus-Outpatient Hospital", "AMB"),
    ("23", "Emergency Room - Hospital", "EMER"),
    ("24", "Ambulatory Surgical Center", "AMB"),
    ("31", "Skilled Nursing Facility", "NONAC"),
    ("32", "Nursing Facility", "NONAC"),
    ("34", "Hospice", "NONAC"),
    ("49", "Independent Clinic", "AMB"),
    ("50", "Federally Qualified Health Center", "AMB"),
    ("51", "Inpatient Psychiatric Facility", "IMP"),
    ("61", "Comprehensive Inpatient Rehabilitation Facility", "IMP"),
    ("72", "Rural Health Clinic", "AMB"),
    ("81", "Independent Laboratory", "AMB"),
)
