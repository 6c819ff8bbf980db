"""Payer claims rows to FHIR R4 (US Core Encounter/Condition/Coverage, CARIN BB
ExplanationOfBenefit): fields, codes and systems."""

from __future__ import annotations

from typing import Any

import pytest

from carebridge.fhir.validation import validate_resource
from carebridge.ingest import identity
from carebridge.ingest.mappers.claims import claim_resources
from carebridge.ingest.records import RowError
from tests.ingest.conftest import CLAIM

POS = "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
NPI = "http://hl7.org/fhir/sid/us-npi"
CPT = "http://www.ama-assn.org/go/cpt"
OFFICE = {
    **CLAIM,
    "claim_type": "professional",
    "bill_type": "",
    "place_of_service": "11",
    "discharge_date": "",
    "discharge_status": "",
    "procedure_code": "99214",
    "revenue_code": "",
}


def resources(row: dict[str, str] | None = None, owns: bool = True) -> list[dict[str, Any]]:
    return [m.content for m in claim_resources(row or CLAIM, "patient-1", owns)]


def one(res_type: str, row: dict[str, str] | None = None) -> dict[str, Any]:
    (found,) = [r for r in resources(row) if r["resourceType"] == res_type]
    return found


class TestEncounter:
    @pytest.mark.parametrize(
        ("place", "encounter_class", "display"),
        [
            ("23", "EMER", "Emergency Room - Hospital"),
            ("21", "IMP", "Inpatient Hospital"),
            ("31", "NONAC", "Skilled Nursing Facility"),
            ("11", "AMB", "Office"),
            ("81", "AMB", "Independent Laboratory"),
            ("02", "VR", "Telehealth Provided Other than in Patient's Home"),
        ],
    )
    def test_class_and_type_come_from_the_place_of_service(
        self, place: str, encounter_class: str, display: str
    ) -> None:
        encounter = one("Encounter", {**CLAIM, "place_of_service": place})
        assert encounter["class"]["system"] == ACT_CODE
        assert encounter["class"]["code"] == encounter_class
        assert encounter["type"] == [
            {"coding": [{"system": POS, "code": place, "display": display}]}
        ]

    def test_a_stay_runs_from_admission_to_discharge(self) -> None:
        encounter = one("Encounter")
        assert encounter["period"] == {"start": "2025-03-30", "end": "2025-04-04"}
        assert encounter["status"] == "finished"
        disposition = encounter["hospitalization"]["dischargeDisposition"]["coding"][0]
        assert disposition == {
            "system": "https://www.nubc.org/CodeSystem/PatDischargeStatus",
            "code": "03",
        }

    def test_a_single_day_claim_is_a_single_day_encounter(self) -> None:
        assert one("Encounter", OFFICE)["period"] == {"start": "2025-03-30", "end": "2025-03-30"}

    def test_providers_are_referenced_by_npi(self) -> None:
        facility = one("Encounter")["serviceProvider"]
        assert facility == {
            "type": "Organization",
            "identifier": {"system": NPI, "value": "1391273327"},
        }
        doctor = one("Encounter", OFFICE)["participant"][0]["individual"]
        assert doctor["type"] == "Practitioner"

    def test_diagnoses_are_ranked_in_billing_order(self) -> None:
        conditions = [r for r in resources() if r["resourceType"] == "Condition"]
        ranks = {d["condition"]["reference"]: d["rank"] for d in one("Encounter")["diagnosis"]}
        assert [ranks[f"Condition/{c['id']}"] for c in conditions] == [1, 2]


class TestCondition:
    def test_each_diagnosis_is_an_icd10cm_encounter_diagnosis(self) -> None:
        conditions = [r for r in resources() if r["resourceType"] == "Condition"]
        assert [c["code"]["coding"][0] for c in conditions] == [
            {"system": ICD10CM, "code": "N39.0"},
            {"system": ICD10CM, "code": "I10"},
        ]
        for condition in conditions:
            assert condition["category"][0]["coding"][0]["code"] == "encounter-diagnosis"
            assert condition["subject"]["reference"] == "Patient/patient-1"
            assert condition["encounter"]["reference"] == f"Encounter/{one('Encounter')['id']}"
            assert condition["recordedDate"] == "2025-03-30"


class TestCoverageAndPayer:
    def test_the_coverage_holds_the_member_id_and_the_payer(self) -> None:
        coverage, payer = one("Coverage"), one("Organization")
        assert coverage["subscriberId"] == "04W339039776"
        assert coverage["identifier"][0]["system"] == identity.PAYER_MEMBER
        assert coverage["identifier"][0]["type"]["coding"][0]["code"] == "MB"
        assert coverage["beneficiary"]["reference"] == "Patient/patient-1"
        assert coverage["payor"][0]["reference"] == f"Organization/{payer['id']}"
        assert payer["identifier"] == [{"system": identity.PAYER, "value": "SYN04"}]
        assert payer["type"][0]["coding"][0]["code"] == "pay"

    def test_the_patient_is_the_member(self) -> None:
        patient = one("Patient")
        assert patient["identifier"][0]["value"] == "04W339039776"
        assert (patient["gender"], patient["birthDate"]) == ("male", "1950-12-22")


class TestExplanationOfBenefit:
    def test_an_institutional_stay_is_an_inpatient_institutional_eob(self) -> None:
        eob = one("ExplanationOfBenefit")
        assert eob["type"]["coding"][0]["code"] == "institutional"
        assert eob["subType"]["coding"][0]["code"] == "inpatient"
        assert eob["billablePeriod"] == {"start": "2025-03-30", "end": "2025-04-04"}
        assert eob["identifier"][0]["value"] == "SYN04-CLM9"
        assert eob["insurance"][0]["coverage"]["reference"] == f"Coverage/{one('Coverage')['id']}"
        assert eob["insurer"]["reference"] == f"Organization/{one('Organization')['id']}"
        info = {i["category"]["coding"][0]["code"]: i for i in eob["supportingInfo"]}
        assert info["typeofbill"]["code"]["coding"][0]["code"] == "0111"
        assert info["discharge-status"]["code"]["coding"][0]["code"] == "03"

    def test_an_er_facility_claim_is_outpatient(self) -> None:
        row = {**CLAIM, "bill_type": "0131", "place_of_service": "23", "discharge_date": ""}
        assert one("ExplanationOfBenefit", row)["subType"]["coding"][0]["code"] == "outpatient"

    def test_amounts_are_submitted_and_benefit_totals(self) -> None:
        eob = one("ExplanationOfBenefit")
        totals = {t["category"]["coding"][0]["code"]: t["amount"] for t in eob["total"]}
        assert totals == {
            "submitted": {"value": 10395.52, "currency": "USD"},
            "benefit": {"value": 6577.70, "currency": "USD"},
        }

    def test_diagnoses_are_principal_then_secondary(self) -> None:
        types = [
            d["type"][0]["coding"][0]["code"] for d in one("ExplanationOfBenefit")["diagnosis"]
        ]
        assert types == ["principal", "secondary"]

    @pytest.mark.parametrize(
        ("code", "system"),
        [
            ("99214", CPT),
            ("G0438", "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"),
            ("", "http://terminology.hl7.org/CodeSystem/data-absent-reason"),
        ],
    )
    def test_the_procedure_code_is_the_product_or_service(self, code: str, system: str) -> None:
        item = one("ExplanationOfBenefit", {**OFFICE, "procedure_code": code})["item"][0]
        assert item["productOrService"]["coding"][0]["system"] == system
        assert item["locationCodeableConcept"]["coding"][0]["code"] == "11"

    def test_every_resource_is_valid_r4(self) -> None:
        for row in (CLAIM, OFFICE):
            for resource in resources(row):
                validate_resource(resource)


class TestBadRows:
    @pytest.mark.parametrize(
        ("changes", "reason"),
        [
            ({"claim_type": "dental"}, "claim_type: not professional or institutional"),
            ({"place_of_service": "7"}, "place_of_service: not a supported"),
            ({"diagnosis_1": "XYZ"}, "diagnosis_1: not an ICD-10-CM code"),
            ({"diagnosis_3": "E11"}, ""),
            ({"discharge_date": "2025-03-01"}, "discharge_date: before service_date"),
            ({"bill_type": ""}, "bill_type: required on institutional claims"),
            ({"billed_amount": "1,000.00"}, "billed_amount: not an amount"),
            ({"provider_npi": "1391273328"}, "provider_npi: not a valid NPI"),
            ({"payer_member_id": ""}, "payer_member_id: required"),
        ],
    )
    def test_a_bad_field_is_refused(self, changes: dict[str, str], reason: str) -> None:
        if not reason:
            assert resources({**CLAIM, **changes})  # a valid 3-character category is accepted
            return
        with pytest.raises(RowError, match=f"^{reason}"):
            claim_resources({**CLAIM, **changes}, "patient-1", True)
