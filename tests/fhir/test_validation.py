"""Validation against the R4 (4.0.1) definitions where the R4B models the validator uses differ.

- Evidence and EvidenceVariable have R4 structures that R4B redesigned
  (http://hl7.org/fhir/R4/evidence.html, evidencevariable.html); the R4 examples must be accepted
  and content that is invalid in R4 refused.
- Codes are closed only by required bindings to enumerable value sets (R4 terminologies.html):
  `CapabilityStatement.format` is bound to MIME types (any MIME type, plus xml | json | ttl),
  `Expression.language` is bound extensibly, so neither is a closed list.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from carebridge.fhir.validation import mandatory_elements, summary_elements, validate_resource
from carebridge.kit.errors import ValidationFailedError
from tests.fhir.conftest import FHIR_JSON

# http://hl7.org/fhir/R4/evidence-example.json, evidencevariable-example.json (without narrative)
R4_EVIDENCE: dict[str, Any] = {
    "resourceType": "Evidence",
    "id": "example",
    "status": "draft",
    "exposureBackground": {"reference": "EvidenceVariable/example"},
}
R4_EVIDENCE_VARIABLE: dict[str, Any] = {
    "resourceType": "EvidenceVariable",
    "id": "example",
    "status": "draft",
    "characteristic": [{"definitionCodeableConcept": {"text": "Diabetic patients over 65"}}],
}


def refusal(resource: dict[str, Any]) -> list[str]:
    """The diagnostics of the refusal of `resource`."""
    with pytest.raises(ValidationFailedError) as caught:
        validate_resource(resource)
    return [issue.diagnostics for issue in caught.value.issues]


def observation(**fields: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, **fields}


class TestR4Structures:
    def test_the_r4_evidence_example_is_accepted(self) -> None:
        assert validate_resource(R4_EVIDENCE) is R4_EVIDENCE

    def test_the_r4_evidence_variable_example_is_accepted(self) -> None:
        validate_resource(R4_EVIDENCE_VARIABLE)

    def test_r4_only_evidence_elements_are_accepted(self) -> None:
        validate_resource(
            {
                **R4_EVIDENCE,
                "name": "Example",
                "shortTitle": "ex",
                "jurisdiction": [{"text": "US"}],
                "effectivePeriod": {"start": "2020-01-01"},
                "exposureVariant": [{"reference": "EvidenceVariable/v"}],
                "outcome": [{"reference": "EvidenceVariable/o"}],
            }
        )

    def test_an_evidence_variable_with_r4_type_and_characteristic_elements_is_accepted(
        self,
    ) -> None:
        characteristic = {
            "definitionDataRequirement": {"type": "Condition"},
            "usageContext": [{"code": {"code": "age"}, "valueRange": {"low": {"value": 65}}}],
            "participantEffectivePeriod": {"start": "2020-01-01"},
            "timeFromStart": {"value": 3, "unit": "d"},
            "groupMeasure": "median",
        }
        validate_resource(
            {**R4_EVIDENCE_VARIABLE, "type": "dichotomous", "characteristic": [characteristic]}
        )

    def test_r4b_shaped_evidence_is_refused(self) -> None:
        r4b: dict[str, Any] = {"resourceType": "Evidence", "status": "draft"}
        r4b["variableDefinition"] = [{"variableRole": {"text": "exposure"}}]
        assert refusal(r4b) == [
            "Evidence.exposureBackground: Field required",
            "Evidence.variableDefinition: unknown element",
        ]

    def test_an_evidence_variable_needs_a_characteristic(self) -> None:
        variable = {k: v for k, v in R4_EVIDENCE_VARIABLE.items() if k != "characteristic"}
        assert refusal(variable) == ["EvidenceVariable.characteristic: Field required"]

    def test_a_characteristic_takes_one_definition(self) -> None:
        two = {"definitionCanonical": "http://example.org/c", "definitionExpression": {}}
        two["definitionExpression"] = {"language": "text/cql", "expression": "Diabetic"}
        (diagnostic,) = refusal({**R4_EVIDENCE_VARIABLE, "characteristic": [two]})
        assert diagnostic.startswith("EvidenceVariable.characteristic[0]:")
        assert "but got multiple" in diagnostic

    def test_status_is_required_and_checked(self) -> None:
        without = {k: v for k, v in R4_EVIDENCE.items() if k != "status"}
        assert refusal(without) == ["Evidence.status: Value for the field 'status' is required."]
        (diagnostic,) = refusal({**R4_EVIDENCE, "status": "final"})
        assert diagnostic.startswith("Evidence.status: 'final' is not one of")

    def test_json_types_are_checked(self) -> None:
        characteristic = {"definitionCanonical": "http://example.org/c", "exclude": "yes"}
        assert refusal({**R4_EVIDENCE_VARIABLE, "characteristic": [characteristic]}) == [
            "EvidenceVariable.characteristic[0].exclude: must be a boolean in FHIR JSON"
        ]

    def test_an_unknown_variable_type_is_refused(self) -> None:
        (diagnostic,) = refusal({**R4_EVIDENCE_VARIABLE, "type": "binary"})
        assert "'binary' is not one of ['continuous', 'descriptive', 'dichotomous']" in diagnostic

    def test_summary_and_mandatory_elements_follow_r4(self) -> None:
        assert {"status", "exposureBackground"} <= mandatory_elements("Evidence")
        assert "variableDefinition" not in mandatory_elements("Evidence")
        assert {"exposureBackground", "outcome"} <= summary_elements("Evidence")
        assert "characteristic" in mandatory_elements("EvidenceVariable")


class TestNestedResources:
    def test_a_contained_r4_evidence_is_accepted(self) -> None:
        validate_resource(observation(contained=[R4_EVIDENCE]))

    def test_a_contained_r4b_evidence_is_refused_at_its_path(self) -> None:
        nested = {"resourceType": "Evidence", "status": "draft"}
        assert refusal(observation(contained=[nested])) == [
            "Observation.contained[0].exposureBackground: Field required"
        ]

    def test_an_evidence_bundle_entry_is_checked_with_the_r4_model(self) -> None:
        collection = {"resourceType": "Bundle", "type": "collection"}
        validate_resource({**collection, "entry": [{"resource": R4_EVIDENCE}]})
        wrong = {**R4_EVIDENCE, "status": "bad"}
        (diagnostic,) = refusal({**collection, "entry": [{"resource": wrong}]})
        assert diagnostic.startswith("Bundle.entry[0].resource.status: 'bad' is not one of")

    def test_a_contained_type_without_an_r4b_model_gets_the_shape_check(self) -> None:
        # MedicinalProduct is R4 only (ADR 0008); it used to crash the R4B model lookup
        validate_resource(observation(contained=[{"resourceType": "MedicinalProduct", "id": "m"}]))


class TestRequiredCodes:
    def test_capability_statement_formats_are_mime_types(self) -> None:
        validate_resource(
            {
                "resourceType": "CapabilityStatement",
                "status": "active",
                "date": "2024-01-01",
                "kind": "instance",
                "fhirVersion": "4.0.1",
                "format": ["xml", "json", "application/fhir+json", "text/turtle"],
            }
        )

    def test_an_extensibly_bound_expression_language_accepts_other_languages(self) -> None:
        condition = {
            "kind": "applicability",
            "expression": {"language": "text/x-python", "expression": "age > 65"},
        }
        validate_resource(
            {
                "resourceType": "PlanDefinition",
                "status": "active",
                "action": [{"condition": [condition]}],
            }
        )

    def test_a_required_binding_to_mime_types_accepts_any_mime_type(self) -> None:
        validate_resource(
            {"resourceType": "Binary", "contentType": "application/x-custom+json", "data": "e30="}
        )
        attachment = {"contentType": "image/x-custom", "url": "http://example.org/a"}
        validate_resource(
            {
                "resourceType": "DocumentReference",
                "status": "current",
                "content": [{"attachment": attachment}],
            }
        )

    def test_a_code_outside_a_closed_required_binding_is_refused(self) -> None:
        with pytest.raises(ValidationFailedError) as caught:
            validate_resource({"resourceType": "Patient", "gender": "robot"})
        assert caught.value.code == "code-invalid"
        assert caught.value.message == (
            "Patient.gender: 'robot' is not one of ['female', 'male', 'other', 'unknown']"
        )
        assert caught.value.expression == ("Patient.gender",)

    def test_codes_of_data_types_are_checked_wherever_the_type_is_used(self) -> None:
        (diagnostic,) = refusal(observation(valueQuantity={"value": 1, "comparator": "~"}))
        assert diagnostic.startswith("Observation.valueQuantity.comparator: '~' is not one of")

    def test_codes_of_elements_defined_by_reference_are_checked(self) -> None:
        # Questionnaire.item.item is defined as Questionnaire.item (contentReference)
        inner = {"linkId": "1.1", "type": "wrong"}
        item = {"linkId": "1", "type": "group", "item": [inner]}
        (diagnostic,) = refusal(
            {"resourceType": "Questionnaire", "status": "active", "item": [item]}
        )
        assert diagnostic.startswith("Questionnaire.item[0].item[0].type: 'wrong' is not one of")

    def test_the_capability_statement_fhir_version_is_a_closed_list(self) -> None:
        (diagnostic,) = refusal(
            {
                "resourceType": "CapabilityStatement",
                "status": "active",
                "date": "2024-01-01",
                "kind": "instance",
                "fhirVersion": "4.0.9",
                "format": ["json"],
            }
        )
        assert diagnostic.startswith("CapabilityStatement.fhirVersion: '4.0.9' is not one of")


class TestOverHttp:
    def test_put_of_the_r4_evidence_examples(self, client: TestClient) -> None:
        for example in (R4_EVIDENCE_VARIABLE, R4_EVIDENCE):
            url = f"/fhir/{example['resourceType']}/example"
            response = client.put(url, json=example, headers=FHIR_JSON)
            assert response.status_code == 201, response.text
            assert client.get(url).json()["status"] == "draft"

    def test_put_of_an_r4b_shaped_evidence_is_400(self, client: TestClient) -> None:
        r4b: dict[str, Any] = {"resourceType": "Evidence", "id": "r4b", "status": "draft"}
        r4b["variableDefinition"] = [{"variableRole": {"text": "exposure"}}]
        response = client.put("/fhir/Evidence/r4b", json=r4b, headers=FHIR_JSON)
        assert response.status_code == 400
        assert response.json()["issue"][0]["expression"] == ["Evidence.exposureBackground"]

    def test_the_servers_own_capability_statement_validates(self, client: TestClient) -> None:
        metadata = client.get("/fhir/metadata", headers={"accept": "application/fhir+json"})
        assert metadata.status_code == 200, metadata.text
        statement = {**metadata.json(), "id": "carebridge"}
        response = client.put(
            "/fhir/CapabilityStatement/carebridge", json=statement, headers=FHIR_JSON
        )
        assert response.status_code == 201, response.text

    def test_put_of_a_parameters_resource_says_why_it_is_refused(self, client: TestClient) -> None:
        parameters = {"resourceType": "Parameters", "id": "p"}
        response = client.put("/fhir/Parameters/p", json=parameters, headers=FHIR_JSON)
        assert 400 <= response.status_code < 500
        assert "not an R4 resource type" not in response.text
