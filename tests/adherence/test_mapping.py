"""FHIR R4 MedicationDispense / MedicationRequest to engine values."""

from __future__ import annotations

from datetime import date

import pytest

from carebridge.adherence.engine import DateRange, Fill, proportion_of_days_covered
from carebridge.adherence.mapping import (
    date_of_service,
    days_supply,
    fills_from_dispense,
    prescription_from_request,
)
from carebridge.adherence.measures import measure

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LISINOPRIL, ATORVASTATIN, METFORMIN, SITAGLIPTIN = "29046", "83367", "6809", "593411"


def concept(code: str, display: str | None = None) -> dict:
    return {"coding": [{"system": RXNORM, "code": code, "display": display}]}


def dispense(**changes) -> dict:
    resource = {
        "resourceType": "MedicationDispense",
        "status": "completed",
        "medicationCodeableConcept": concept("314076", "lisinopril 10 MG Oral Tablet"),
        "whenHandedOver": "2023-03-01T10:15:00-05:00",
        "daysSupply": {
            "value": 30,
            "unit": "day",
            "system": "http://unitsofmeasure.org",
            "code": "d",
        },
    }
    resource.update(changes)
    return {k: v for k, v in resource.items() if v is not None}


def by_reference(reference: str) -> dict:
    return dispense(medicationCodeableConcept=None, medicationReference={"reference": reference})


ATORVASTATIN_MEDICATION = {"resourceType": "Medication", "id": "m1", "code": concept("617310")}


class TestFillsFromDispense:
    def test_maps_a_coded_dispense_to_one_fill(self):
        assert fills_from_dispense(dispense()) == (Fill(date(2023, 3, 1), 30, LISINOPRIL),)

    def test_reads_a_contained_medication(self):
        resource = by_reference("#m1") | {"contained": [ATORVASTATIN_MEDICATION]}

        assert [f.ingredient for f in fills_from_dispense(resource)] == [ATORVASTATIN]

    @pytest.mark.parametrize(
        "reference", ["Medication/m1", "https://fhir.example.org/r4/Medication/m1"]
    )
    def test_looks_up_a_referenced_medication(self, reference):
        medications = {"Medication/m1": ATORVASTATIN_MEDICATION}

        fills = fills_from_dispense(by_reference(reference), medications=medications)

        assert [f.ingredient for f in fills] == [ATORVASTATIN]

    def test_yields_nothing_without_a_medication(self):
        assert fills_from_dispense(dispense(medicationCodeableConcept=None)) == ()

    def test_yields_nothing_for_an_unresolvable_reference(self):
        assert fills_from_dispense(by_reference("Medication/missing")) == ()

    def test_reads_the_ingredients_of_a_medication_with_an_uncoded_product(self):
        medication = {
            "resourceType": "Medication",
            "id": "m2",
            "code": {"text": "house blend"},
            "ingredient": [{"itemCodeableConcept": concept(METFORMIN, "metformin")}],
        }
        resource = by_reference("#m2") | {"contained": [medication]}

        assert [f.ingredient for f in fills_from_dispense(resource)] == [METFORMIN]

    def test_yields_one_fill_per_target_of_a_combination(self):
        resource = dispense(medicationCodeableConcept=concept("861819"))  # sitagliptin/metformin

        assert {f.ingredient for f in fills_from_dispense(resource)} == {METFORMIN, SITAGLIPTIN}

    @pytest.mark.parametrize("status", ["cancelled", "in-progress", "entered-in-error", None])
    def test_counts_only_completed_dispenses(self, status):
        assert fills_from_dispense(dispense(status=status)) == ()

    def test_yields_nothing_without_a_date_of_service(self):
        assert fills_from_dispense(dispense(whenHandedOver=None)) == ()

    def test_yields_nothing_without_days_supply(self):
        assert fills_from_dispense(dispense(daysSupply=None)) == ()

    def test_counts_a_combination_refill_as_the_same_drug(self):
        # lisinopril Jan 1 (90 d) then lisinopril/HCTZ Mar 1 (90 d): shifted to Apr 1-Jun 29
        plain = dispense(whenHandedOver="2023-01-01", daysSupply={"value": 90})
        combo = dispense(
            medicationCodeableConcept=concept("197885"),
            whenHandedOver="2023-03-01",
            daysSupply={"value": 90},
        )
        fills = [*fills_from_dispense(plain), *fills_from_dispense(combo)]

        result = proportion_of_days_covered(
            fills, measure("PDC-RASA"), DateRange(date(2023, 1, 1), date(2023, 12, 31))
        )

        assert result.days_covered == 180


class TestDateOfService:
    def test_prefers_when_handed_over(self):
        resource = dispense(whenPrepared="2023-02-27")

        assert date_of_service(resource) == date(2023, 3, 1)

    def test_falls_back_to_when_prepared(self):
        assert date_of_service(dispense(whenHandedOver=None, whenPrepared="2023-02-27")) == date(
            2023, 2, 27
        )

    @pytest.mark.parametrize("value", ["2023-03", "2023", "2023-02-30", 20230301])
    def test_rejects_a_value_without_a_valid_day(self, value):
        assert date_of_service(dispense(whenHandedOver=value)) is None


class TestDaysSupply:
    @pytest.mark.parametrize(
        ("quantity", "expected"),
        [
            pytest.param({"value": 30, "code": "d"}, 30, id="ucum-days"),
            pytest.param({"value": 28, "unit": "days"}, 28, id="unit-text"),
            pytest.param({"value": 30}, 30, id="no-unit"),
            pytest.param({"value": 7.5, "code": "d"}, 8, id="fraction-rounds-up"),
            pytest.param({"value": 4, "code": "wk"}, None, id="weeks-rejected"),
            pytest.param({"value": 0}, None, id="zero"),
            pytest.param({"value": True}, None, id="boolean"),
            pytest.param({"value": "30"}, None, id="string"),
        ],
    )
    def test_reads_whole_days(self, quantity, expected):
        assert days_supply(dispense(daysSupply=quantity)) == expected


class TestPrescriptionFromRequest:
    REQUEST = {
        "resourceType": "MedicationRequest",
        "id": "rx-1",
        "status": "active",
        "intent": "order",
        "authoredOn": "2023-01-05",
        "medicationCodeableConcept": concept("314076"),
    }

    def test_maps_an_active_order(self):
        prescription = prescription_from_request(self.REQUEST)

        assert prescription is not None
        assert (prescription.id, prescription.authored_on, prescription.ingredients) == (
            "rx-1",
            date(2023, 1, 5),
            {LISINOPRIL},
        )

    @pytest.mark.parametrize(
        "changes",
        [
            pytest.param({"intent": "proposal"}, id="proposal"),
            pytest.param({"status": "cancelled"}, id="cancelled"),
            pytest.param({"authoredOn": None}, id="no-date"),
            pytest.param({"medicationCodeableConcept": concept("197361")}, id="not-a-measure-drug"),
        ],
    )
    def test_skips_what_is_not_a_prescription_to_follow(self, changes):
        assert prescription_from_request(self.REQUEST | changes) is None
