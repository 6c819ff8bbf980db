"""Provider records as FHIR R4 transaction Bundles, one per patient (pure mapping).

Each Bundle holds the Patient, its Conditions (SNOMED CT + ICD-10-CM codings), Observations
(blood-pressure panel 85354-9 with systolic 8480-6 / diastolic 8462-4 components, HbA1c 4548-4,
calculated LDL 13457-7, UCUM units) and one MedicationRequest per prescription line (RxNorm SCD).
Entries use `urn:uuid:` fullUrls and reference each other by them (FHIR R4 3.1.0.11.2, "Resolving
references in Bundles"). Every entry is a conditional create (`ifNoneExist`), so loading a bundle
twice creates nothing new: the Patient matches on its MRN, the other resources on a
`provider-record` identifier holding their deterministic UUID.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from carebridge.synth.codes import (
    ICD10CM,
    ICD10CM_CODES,
    LOINC,
    LOINC_CODES,
    NPI_SYSTEM,
    RXNORM,
    SNOMED,
    SNOMED_CODES,
    UCUM,
)
from carebridge.synth.conditions import CODINGS, Condition
from carebridge.synth.providers import PAYERS
from carebridge.synth.regimens import DRUGS
from carebridge.synth.window import Window, iso_days

SID = "https://carebridge.dev/fhir/sid"
MRN_SYSTEM = f"{SID}/mrn"
PHARMACY_MEMBER_SYSTEM = f"{SID}/pharmacy-member"
PAYER_MEMBER_SYSTEM = f"{SID}/payer-member"
RECORD_SYSTEM = f"{SID}/provider-record"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
TERMINOLOGY = "http://terminology.hl7.org/CodeSystem"
OBSERVATION_CATEGORY = f"{TERMINOLOGY}/observation-category"
CONDITION_CLINICAL = f"{TERMINOLOGY}/condition-clinical"
CONDITION_VERIFICATION = f"{TERMINOLOGY}/condition-ver-status"
CONDITION_CATEGORY = f"{TERMINOLOGY}/condition-category"
Resource = dict[str, Any]


@dataclass(frozen=True)
class BundleInputs:
    patients: pd.DataFrame
    diagnoses: pd.DataFrame  # conditions table
    poor_a1c: npt.NDArray[np.bool_]
    observations: pd.DataFrame
    lines: pd.DataFrame
    prescribers: pd.DataFrame


def _coding(system: str, code: str, display: str) -> dict[str, str]:
    return {"system": system, "code": code, "display": display}


def _entry(uuid: str, resource: Resource, match: str) -> Resource:
    request = {"method": "POST", "url": resource["resourceType"], "ifNoneExist": match}
    return {"fullUrl": f"urn:uuid:{uuid}", "resource": resource, "request": request}


def _record(uuid: str) -> tuple[list[dict[str, str]], str]:
    return [{"system": RECORD_SYSTEM, "value": uuid}], f"identifier={RECORD_SYSTEM}|{uuid}"


def patient_resource(row: dict[str, Any]) -> Resource:
    identifiers: list[dict[str, Any]] = [
        {
            "use": "usual",
            "type": {"coding": [{"system": V2_0203, "code": "MR"}]},
            "system": MRN_SYSTEM,
            "value": row["mrn"],
        },
        {"system": PHARMACY_MEMBER_SYSTEM, "value": row["pharmacy_member_id"]},
    ]
    if row["payer_member_id"]:
        identifiers.append(
            {
                "type": {"coding": [{"system": V2_0203, "code": "MB"}]},
                "system": PAYER_MEMBER_SYSTEM,
                "value": row["payer_member_id"],
                "assigner": {"display": PAYERS[row["payer_index"]].name},
            }
        )
    return {
        "resourceType": "Patient",
        "identifier": identifiers,
        "name": [{"family": row["last_name"], "given": [row["first_name"]]}],
        "gender": "female" if row["sex"] == "F" else "male",
        "birthDate": row["birth_date"],
        "address": [{"postalCode": row["postal_code"], "state": "OH", "country": "US"}],
    }


def _concept(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


def condition_resource(
    subject: str, condition: int, onset: str, poor_a1c: bool, uuid: str
) -> Resource:
    coding = CODINGS[Condition(condition)]
    icd = coding.icd10_poorly_controlled if poor_a1c else coding.icd10
    snomed = _coding(SNOMED, coding.snomed, SNOMED_CODES[coding.snomed])
    return {
        "resourceType": "Condition",
        "identifier": _record(uuid)[0],
        "clinicalStatus": _concept(CONDITION_CLINICAL, "active"),
        "verificationStatus": _concept(CONDITION_VERIFICATION, "confirmed"),
        "category": [_concept(CONDITION_CATEGORY, "problem-list-item")],
        "code": {
            "coding": [snomed, _coding(ICD10CM, icd, ICD10CM_CODES[icd])],
            "text": coding.label,
        },
        "subject": {"reference": subject},
        "onsetDateTime": onset,
        "recordedDate": onset,
    }


def _quantity(value: float, unit: str, code: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": code}


def _loinc(code: str) -> dict[str, Any]:
    return {"coding": [_coding(LOINC, code, LOINC_CODES[code])]}


def observation_resource(
    subject: str, kind: str, day: str, value: float, value2: float, uuid: str
) -> Resource:
    identifier, _ = _record(uuid)
    resource: Resource = {
        "resourceType": "Observation",
        "identifier": identifier,
        "status": "final",
    }
    category = "vital-signs" if kind == "bp" else "laboratory"
    resource["category"] = [{"coding": [{"system": OBSERVATION_CATEGORY, "code": category}]}]
    if kind == "bp":
        resource["code"] = _loinc("85354-9")
        resource["component"] = [
            {"code": _loinc("8480-6"), "valueQuantity": _quantity(int(value), "mmHg", "mm[Hg]")},
            {"code": _loinc("8462-4"), "valueQuantity": _quantity(int(value2), "mmHg", "mm[Hg]")},
        ]
    elif kind == "a1c":
        resource["code"] = _loinc("4548-4")
        resource["valueQuantity"] = _quantity(value, "%", "%")
    else:
        resource["code"] = _loinc("13457-7")
        resource["valueQuantity"] = _quantity(int(value), "mg/dL", "mg/dL")
    resource["subject"] = {"reference": subject}
    resource["effectiveDateTime"] = day
    return resource


def medication_request_resource(
    subject: str, line: dict[str, Any], prescriber: dict[str, str]
) -> Resource:
    drug = DRUGS[line["drug"]]
    identifier, _ = _record(line["line_uuid"])
    days = line["days_supply"]
    return {
        "resourceType": "MedicationRequest",
        "identifier": identifier,
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [_coding(RXNORM, drug.rxcui, drug.name)],
            "text": drug.name,
        },
        "subject": {"reference": subject},
        "authoredOn": line["authored_on"],
        "requester": {
            "identifier": {"system": NPI_SYSTEM, "value": prescriber["npi"]},
            "display": f"{prescriber['first_name']} {prescriber['last_name']}",
        },
        "reasonReference": [{"reference": f"urn:uuid:{line['condition_uuid']}"}],
        "dosageInstruction": [
            {
                "text": drug.sig,
                "timing": {
                    "repeat": {"frequency": drug.units_per_day, "period": 1, "periodUnit": "d"}
                },
            }
        ],
        "dispenseRequest": {
            "numberOfRepeatsAllowed": line["refills_authorized"],
            "quantity": {"value": days * drug.units_per_day, "unit": "tablet"},
            "expectedSupplyDuration": _quantity(days, "days", "d"),
        },
    }


def _groups(patient_index: npt.NDArray[np.int64], count: int) -> list[int]:
    """Row boundaries per patient for a table sorted by patient_index."""
    bounds: list[int] = np.searchsorted(patient_index, np.arange(count + 1)).tolist()
    return bounds


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return frame.to_dict("records")  # type: ignore[no-any-return]


@dataclass(frozen=True)
class _Rows:
    """Row dictionaries per table, and where each patient's rows start and end."""

    rows: list[dict[str, Any]]
    bounds: list[int]

    def of(self, patient: int) -> list[dict[str, Any]]:
        return self.rows[self.bounds[patient] : self.bounds[patient + 1]]


def _rows(frame: pd.DataFrame, count: int) -> _Rows:
    return _Rows(_records(frame), _groups(frame["patient_index"].to_numpy(), count))


def _record_entry(uuid: str, resource: Resource) -> Resource:
    return _entry(uuid, resource, _record(uuid)[1])


@dataclass(frozen=True)
class _PatientRecords:
    """Everything recorded about patients, as row dictionaries grouped per patient."""

    diagnoses: _Rows
    observations: _Rows
    medications: _Rows
    prescribers: list[dict[str, Any]]
    poor_a1c: npt.NDArray[np.bool_]

    def bundle(self, index: int, patient: dict[str, Any]) -> Resource:
        subject = f"urn:uuid:{patient['patient_uuid']}"
        mrn_match = f"identifier={MRN_SYSTEM}|{patient['mrn']}"
        entries = [_entry(patient["patient_uuid"], patient_resource(patient), mrn_match)]
        poor_a1c = bool(self.poor_a1c[index])
        for d in self.diagnoses.of(index):
            resource = condition_resource(
                subject, d["condition"], d["onset"], poor_a1c, d["condition_uuid"]
            )
            entries.append(_record_entry(d["condition_uuid"], resource))
        for o in self.observations.of(index):
            resource = observation_resource(
                subject, o["kind"], o["day"], o["value"], o["value2"], o["obs_uuid"]
            )
            entries.append(_record_entry(o["obs_uuid"], resource))
        for m in self.medications.of(index):
            resource = medication_request_resource(subject, m, self.prescribers[m["prescriber"]])
            entries.append(_record_entry(m["line_uuid"], resource))
        return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _patient_records(inputs: BundleInputs, window: Window) -> _PatientRecords:
    count = len(inputs.patients)
    diagnoses = inputs.diagnoses.assign(
        onset=window.iso(inputs.diagnoses["onset_offset"].to_numpy())
    )
    observations = inputs.observations.assign(
        day=window.iso(inputs.observations["offset"].to_numpy())
    )
    reasons = inputs.diagnoses[["patient_index", "condition", "condition_uuid"]]
    lines = inputs.lines.merge(reasons, on=["patient_index", "condition"], how="left", sort=False)
    lines = lines.assign(authored_on=window.iso(inputs.lines["written_offset"].to_numpy()))
    return _PatientRecords(
        diagnoses=_rows(diagnoses, count),
        observations=_rows(observations, count),
        medications=_rows(lines, count),
        prescribers=_records(inputs.prescribers),
        poor_a1c=inputs.poor_a1c,
    )


def patient_bundles(inputs: BundleInputs, window: Window) -> Iterator[Resource]:
    """Yield one transaction Bundle per patient, in patient order."""
    records = _patient_records(inputs, window)
    patients = inputs.patients.assign(birth_date=iso_days(inputs.patients["birth_date"].to_numpy()))
    for index, patient in enumerate(_records(patients)):
        yield records.bundle(index, patient)
