"""Terminology tables: every ICD-10-CM, SNOMED CT, LOINC, CPT/HCPCS and claim code emitted.

Nothing outside these tables (and the RxNorm table in `regimens`) is ever written; a test checks
that. Sources:

- ICD-10-CM: CDC/NCHS ICD-10-CM tabular list (FY2025), https://www.cdc.gov/nchs/icd/icd-10-cm/
- SNOMED CT: SNOMED International browser, International Edition.
- LOINC: https://loinc.org; the BP panel and components are those of the FHIR R4 vital-signs
  profile (http://hl7.org/fhir/R4/observation-vitalsigns.html); the LDL codes are the FHIR
  `lipid-ldl-codes` value set.
- CPT (HCPCS Level I): AMA CPT evaluation-and-management and pathology codes.
- Place of service: CMS POS code set. Revenue codes, type of bill, discharge status: NUBC UB-04.
"""

from __future__ import annotations

SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"

ICD10CM_CODES: dict[str, str] = {
    # chronic conditions
    "I10": "Essential (primary) hypertension",
    "E11.9": "Type 2 diabetes mellitus without complications",
    "E11.65": "Type 2 diabetes mellitus with hyperglycemia",
    "E78.5": "Hyperlipidemia, unspecified",
    "I50.9": "Heart failure, unspecified",
    # emergency and inpatient reasons
    "I16.9": "Hypertensive crisis, unspecified",
    "R07.9": "Chest pain, unspecified",
    "R06.02": "Shortness of breath",
    "R51.9": "Headache, unspecified",
    "R55": "Syncope and collapse",
    "R10.9": "Unspecified abdominal pain",
    "J06.9": "Acute upper respiratory infection, unspecified",
    "N39.0": "Urinary tract infection, site not specified",
    "J18.9": "Pneumonia, unspecified organism",
    "A41.9": "Sepsis, unspecified organism",
    "N17.9": "Acute kidney failure, unspecified",
    "I21.4": "Non-ST elevation (NSTEMI) myocardial infarction",
    "I63.9": "Cerebral infarction, unspecified",
    "E16.2": "Hypoglycemia, unspecified",
    # encounters without a problem
    "Z00.00": "Encounter for general adult medical examination without abnormal findings",
}

SNOMED_CODES: dict[str, str] = {
    "38341003": "Hypertensive disorder, systemic arterial (disorder)",
    "44054006": "Diabetes mellitus type 2 (disorder)",
    "55822004": "Hyperlipidemia (disorder)",
    "84114007": "Heart failure (disorder)",
}

LOINC_CODES: dict[str, str] = {
    "85354-9": "Blood pressure panel with all children optional",
    "8480-6": "Systolic blood pressure",
    "8462-4": "Diastolic blood pressure",
    "4548-4": "Hemoglobin A1c/Hemoglobin.total in Blood",
    "13457-7": "Cholesterol in LDL [Mass/volume] in Serum or Plasma by calculation",
}

PROCEDURE_CODES: dict[str, str] = {
    "99213": "Office or other outpatient visit, established patient, low MDM",
    "99214": "Office or other outpatient visit, established patient, moderate MDM",
    "99395": "Periodic preventive medicine, established patient, 18-39 years",
    "99396": "Periodic preventive medicine, established patient, 40-64 years",
    "99397": "Periodic preventive medicine, established patient, 65 years and older",
    "99284": "Emergency department visit, moderate MDM",
    "99285": "Emergency department visit, high MDM",
    "99223": "Initial hospital inpatient or observation care, high MDM",
    "99304": "Initial nursing facility care, straightforward or low MDM",
    "83036": "Hemoglobin; glycosylated (A1C)",
    "80061": "Lipid panel",
}

PLACE_OF_SERVICE: dict[str, str] = {
    "11": "Office",
    "21": "Inpatient Hospital",
    "23": "Emergency Room - Hospital",
    "31": "Skilled Nursing Facility",
    "81": "Independent Laboratory",
}

REVENUE_CODES: dict[str, str] = {
    "0120": "Room & board, semi-private (two beds), general",
    "0450": "Emergency room, general",
}

BILL_TYPES: dict[str, str] = {
    "0111": "Hospital inpatient (Part A), admit through discharge",
    "0131": "Hospital outpatient, admit through discharge",
    "0211": "Skilled nursing facility inpatient, admit through discharge",
}

DISCHARGE_STATUS: dict[str, str] = {
    "01": "Discharged to home or self care",
    "03": "Discharged/transferred to a skilled nursing facility",
    "06": "Discharged/transferred to home under care of a home health organization",
}
