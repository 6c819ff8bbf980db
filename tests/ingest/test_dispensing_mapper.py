"""Pharmacy dispensing rows to FHIR R4: every field lands where FHIR says, with the right codes."""

from __future__ import annotations

from typing import Any

import pytest

from carebridge.fhir.validation import validate_resource
from carebridge.ingest import identity
from carebridge.ingest.identity import resource_id
from carebridge.ingest.mappers.dispensing import fill_patient, fill_resources
from carebridge.ingest.records import Identifier, RowError
from tests.ingest.conftest import FILL

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
NDC = "http://hl7.org/fhir/sid/ndc"
NPI = "http://hl7.org/fhir/sid/us-npi"
NCPDP = "http://terminology.hl7.org/NamingSystem/NCPDPProviderIdentificationNumber"
UCUM = "http://unitsofmeasure.org"


def mapped(row: dict[str, str] | None = None, owns: bool = True) -> dict[str, dict[str, Any]]:
    resources = fill_resources(row or FILL, "patient-1", owns)
    return {m.content["resourceType"]: m.content for m in reversed(resources)}


def at(resource: dict[str, Any], path: str) -> Any:
    value: Any = resource
    for part in path.split("."):
        value = value[int(part)] if part.isdigit() else value[part]
    return value


FIELDS = [
    ("pharmacy_member_id", "Patient", "identifier.0.system", identity.PHARMACY_MEMBER),
    ("pharmacy_member_id", "Patient", "identifier.0.value", "PM100"),
    ("patient_first_name", "Patient", "name.0.given.0", "Ann"),
    ("patient_last_name", "Patient", "name.0.family", "Smith"),
    ("patient_birth_date", "Patient", "birthDate", "1960-01-02"),
    ("patient_sex", "Patient", "gender", "female"),
    ("patient_postal_code", "Patient", "address.0.postalCode", "44101"),
    ("store_ncpdp_id", "Location", "identifier.0", {"system": NCPDP, "value": "3618706"}),
    ("store_ncpdp_id", "Organization", "identifier.0", {"system": NCPDP, "value": "3618706"}),
    ("store_name", "Location", "name", "CareBridge Pharmacy #0014 Newark"),
    ("store_name", "Organization", "name", "CareBridge Pharmacy #0014 Newark"),
    ("prescriber_npi", "Practitioner", "identifier.0", {"system": NPI, "value": "1779513518"}),
    ("prescriber_first_name", "Practitioner", "name.0.given.0", "Katherine"),
    ("prescriber_last_name", "Practitioner", "name.0.family", "Hill"),
    ("rxcui", "Medication", "code.coding.0.system", RXNORM),
    ("rxcui", "Medication", "code.coding.0.code", "617310"),
    ("rxcui", "MedicationRequest", "medicationCodeableConcept.coding.0.code", "617310"),
    ("drug_name", "Medication", "code.text", "atorvastatin 20 MG Oral Tablet"),
    ("drug_name", "Medication", "code.coding.0.display", "atorvastatin 20 MG Oral Tablet"),
    ("ndc11", "Medication", "code.coding.1", {"system": NDC, "code": "68071481901"}),
    ("quantity_dispensed", "MedicationDispense", "quantity.value", 30),
    ("days_supply", "MedicationDispense", "daysSupply.value", 30),
    ("days_supply", "MedicationDispense", "daysSupply.code", "d"),
    ("days_supply", "MedicationDispense", "daysSupply.system", UCUM),
    ("fill_date", "MedicationDispense", "whenHandedOver", "2025-02-01"),
    ("refill_number", "MedicationDispense", "identifier.0.value", "3618706-100000076-1"),
    ("refill_number", "MedicationDispense", "type.coding.0.code", "RF"),
    ("refills_authorized", "MedicationRequest", "dispenseRequest.numberOfRepeatsAllowed", 11),
    ("prescription_number", "MedicationRequest", "identifier.0.value", "3618706-100000076"),
    ("prescription_number", "MedicationRequest", "identifier.0.type.coding.0.code", "FILL"),
    ("date_written", "MedicationRequest", "authoredOn", "2025-01-01"),
]


class TestFields:
    @pytest.mark.parametrize(("column", "res_type", "path", "expected"), FIELDS)
    def test_the_field_lands_where_fhir_says(
        self, column: str, res_type: str, path: str, expected: Any
    ) -> None:
        assert at(mapped()[res_type], path) == expected

    def test_every_column_is_used(self) -> None:
        used = {column for column, *_ in FIELDS} | {"payer_member_id"}
        assert used == set(FILL)

    def test_the_payer_member_id_is_a_matching_identifier_not_patient_content(self) -> None:
        patient = fill_patient(FILL)
        assert patient.others == (Identifier(identity.PAYER_MEMBER, "03W854499180"),)
        assert "03W854499180" not in str(mapped()["Patient"])

    def test_a_first_fill_has_type_ff(self) -> None:
        assert at(
            mapped({**FILL, "refill_number": "0"})["MedicationDispense"], "type.coding.0"
        ) == {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "FF",
            "display": "First Fill",
        }

    def test_a_fill_without_ndc_codes_rxnorm_only(self) -> None:
        codings = mapped({**FILL, "ndc11": ""})["Medication"]["code"]["coding"]
        assert [c["system"] for c in codings] == [RXNORM]


class TestReferences:
    def test_the_dispense_points_at_its_patient_prescription_drug_store_and_pharmacy(self) -> None:
        resources = mapped()
        dispense = resources["MedicationDispense"]
        assert dispense["subject"]["reference"] == "Patient/patient-1"
        assert dispense["authorizingPrescription"][0]["reference"] == (
            f"MedicationRequest/{resources['MedicationRequest']['id']}"
        )
        assert dispense["medicationReference"]["reference"] == (
            f"Medication/{resources['Medication']['id']}"
        )
        assert dispense["location"]["reference"] == f"Location/{resources['Location']['id']}"
        organization = f"Organization/{resources['Organization']['id']}"
        assert dispense["performer"][0]["actor"]["reference"] == organization
        assert resources["Location"]["managingOrganization"]["reference"] == organization

    def test_the_prescription_names_its_prescriber(self) -> None:
        resources = mapped()
        requester = resources["MedicationRequest"]["requester"]
        assert requester["reference"] == f"Practitioner/{resources['Practitioner']['id']}"

    def test_ids_come_from_source_keys(self) -> None:
        dispense = mapped()["MedicationDispense"]
        expected = resource_id("MedicationDispense", identity.DISPENSE, "3618706-100000076-1")
        assert dispense["id"] == expected
        assert mapped()["Practitioner"]["id"] == resource_id("Practitioner", NPI, "1779513518")

    def test_the_patient_is_written_only_by_the_feed_that_created_it(self) -> None:
        assert "Patient" not in mapped(owns=False)

    def test_only_the_dispense_is_per_row(self) -> None:
        resources = fill_resources(FILL, "patient-1", True)
        assert [m.content["resourceType"] for m in resources if not m.shared] == [
            "MedicationDispense"
        ]

    def test_every_resource_is_valid_r4(self) -> None:
        for resource in mapped().values():
            validate_resource(resource)


BAD = [
    ("fill_date", "2025-13-01", "fill_date: not a date"),
    ("patient_birth_date", "02/01/1960", "patient_birth_date: not a date"),
    ("prescriber_npi", "1234567890", "prescriber_npi: not a valid NPI"),
    ("days_supply", "thirty", "days_supply: not a whole number"),
    ("days_supply", "0", "days_supply: must be at least 1"),
    ("quantity_dispensed", "0", "quantity_dispensed: must be greater than zero"),
    ("store_ncpdp_id", "36187", "store_ncpdp_id: not a 7-digit NCPDP provider id"),
    ("patient_sex", "X", "patient_sex: not a sex code"),
    ("rxcui", "", "rxcui: required"),
    ("ndc11", "6807148", "ndc11: not an 11-digit NDC"),
    ("refill_number", "12", "refill_number: exceeds refills_authorized"),
    ("fill_date", "2024-12-31", "fill_date: before date_written"),
    ("pharmacy_member_id", "", "pharmacy_member_id: required"),
]


class TestBadRows:
    @pytest.mark.parametrize(("column", "value", "reason"), BAD)
    def test_a_bad_field_is_refused_with_the_column_and_rule(
        self, column: str, value: str, reason: str
    ) -> None:
        with pytest.raises(RowError) as refused:
            fill_resources({**FILL, column: value}, "patient-1", True)
        assert str(refused.value).startswith(reason)
        if value:
            assert value not in str(refused.value)  # reasons never echo values (PHI)

    @pytest.mark.parametrize(
        ("value", "gender"), [("1", "male"), ("2", "female"), ("0", "unknown")]
    )
    def test_ncpdp_gender_codes_are_accepted(self, value: str, gender: str) -> None:
        assert mapped({**FILL, "patient_sex": value})["Patient"]["gender"] == gender
