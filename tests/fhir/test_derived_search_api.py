"""Searches on derived parameters (search/derived.py) through the REST API: each finds what the
parameter's R4 expression selects, although its values are read from other parameters' rows."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.fhir.conftest import search
from tests.fhir.test_search_api import LOINC, found, load, observation, patient

SYSTOLIC = {"coding": [{"system": LOINC, "code": "8480-6"}]}
PANEL = {"coding": [{"system": LOINC, "code": "85354-9"}]}
MMHG = {"value": 120, "unit": "mm[Hg]", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}


@pytest.fixture
def readings(client: TestClient) -> None:
    load(
        client,
        patient("p", name=[{"family": "Chalmers"}]),
        {"resourceType": "Group", "id": "g", "type": "person", "actual": True},
        observation(
            "panel",
            code=PANEL,
            subject={"reference": "Patient/p"},
            component=[{"code": SYSTOLIC, "valueQuantity": MMHG}],
        ),
        observation("plain", code=SYSTOLIC, subject={"reference": "Patient/p"}),
        observation("group", subject={"reference": "Group/g"}),
        observation("nobody"),
    )


@pytest.mark.usefixtures("readings")
class TestUnions:
    def test_combo_code_matches_the_code_or_a_component_code(self, client: TestClient) -> None:
        # R4 Observation combo-code: Observation.code | Observation.component.code
        assert found(client, "Observation", **{"combo-code": f"{LOINC}|8480-6"}) == [
            "panel",
            "plain",
        ]
        assert found(client, "Observation", **{"combo-code": f"{LOINC}|85354-9"}) == ["panel"]

    def test_combo_value_quantity_matches_a_component_value(self, client: TestClient) -> None:
        assert found(client, "Observation", **{"combo-value-quantity": "120"}) == ["panel"]

    def test_missing_on_a_union_is_missing_in_every_part(self, client: TestClient) -> None:
        assert found(client, "Observation", **{"combo-value-quantity:missing": "true"}) == [
            "group",
            "nobody",
            "plain",
        ]

    def test_phonetic_reads_the_name_rows(self, client: TestClient) -> None:
        load(client, {"resourceType": "Practitioner", "id": "doc", "name": [{"family": "Jones"}]})
        assert found(client, "Practitioner", phonetic="jones") == ["doc"]


@pytest.mark.usefixtures("readings")
class TestRestrictions:
    def test_patient_is_the_subject_when_it_is_a_patient(self, client: TestClient) -> None:
        assert found(client, "Observation", patient="p") == ["panel", "plain"]
        assert found(client, "Observation", patient="g") == []
        assert found(client, "Observation", subject="g") == ["group"]

    def test_missing_patient_includes_a_group_subject(self, client: TestClient) -> None:
        assert found(client, "Observation", **{"patient:missing": "true"}) == ["group", "nobody"]

    def test_include_and_revinclude_follow_only_patients(self, client: TestClient) -> None:
        bundle = search(client, "Observation", _include="Observation:patient")
        assert sorted(
            e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "include"
        ) == ["p"]
        bundle = search(client, "Patient", _id="p", _revinclude="Observation:patient")
        assert sorted(
            e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "include"
        ) == ["panel", "plain"]

    def test_chain_and_has_go_through_the_patient(self, client: TestClient) -> None:
        assert found(client, "Observation", **{"patient.name": "chalmers"}) == ["panel", "plain"]
        assert found(client, "Patient", **{"_has:Observation:patient:code": "85354-9"}) == ["p"]
        assert found(client, "Group", **{"_has:Observation:patient:code": "1234-5"}) == []

    def test_a_search_over_types_reads_each_types_own_rows(self, client: TestClient) -> None:
        # AllergyIntolerance.patient is an element of its own, Observation.patient is not
        allergy: dict[str, Any] = {
            "resourceType": "AllergyIntolerance",
            "id": "a",
            "patient": {"reference": "Patient/p"},
        }
        load(client, allergy)
        bundle = search(client, "", _type="Observation,AllergyIntolerance", patient="Patient/p")
        keys = sorted(
            f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"]
        )
        assert keys == ["AllergyIntolerance/a", "Observation/panel", "Observation/plain"]


class TestSameExpression:
    def test_coverage_patient_is_the_beneficiary(self, client: TestClient) -> None:
        load(
            client,
            patient("member"),
            {
                "resourceType": "Coverage",
                "id": "cov",
                "status": "active",
                "beneficiary": {
                    "reference": "Patient/member",
                    "identifier": {"system": "urn:member", "value": "M-1"},
                },
                "payor": [{"reference": "Patient/member"}],
            },
        )
        assert found(client, "Coverage", patient="member") == ["cov"]
        assert found(client, "Coverage", **{"patient:identifier": "urn:member|M-1"}) == ["cov"]


@pytest.fixture
def client(shared_client: TestClient) -> TestClient:
    return shared_client
