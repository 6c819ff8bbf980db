"""Search values a supported parameter cannot mean anything with, and parameters the server does
not support, over HTTP (R4 search.html#errors, #number, #quantity, #token, #reference, #has).

A bad value of a supported parameter is a 400 OperationOutcome naming the parameter under either
`Prefer: handling`; an unsupported parameter (`_filter`) is ignored and reported under lenient
handling and a 400 under strict handling.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.fhir.conftest import ids, put

LENIENT = {"Prefer": "handling=lenient"}
STRICT = {"Prefer": "handling=strict"}


@pytest.fixture
def client(shared_client: TestClient) -> TestClient:
    put(shared_client, {"resourceType": "Patient", "id": "p"})
    for res_id, value in (("small", 0.25), ("large", 1e300)):
        put(
            shared_client,
            {
                "resourceType": "Observation",
                "id": res_id,
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
                "subject": {"reference": "Patient/p"},
                "valueQuantity": {"value": value, "unit": "kg"},
            },
        )
    put(
        shared_client,
        {
            "resourceType": "RiskAssessment",
            "id": "ra",
            "status": "final",
            "subject": {"reference": "Patient/p"},
            "prediction": [{"probabilityDecimal": 0.25}],
        },
    )
    return shared_client


def refused(response: Any, name: str) -> str:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    diagnostics: str = body["issue"][0]["diagnostics"]
    assert diagnostics.startswith(f"{name}: "), diagnostics
    return diagnostics


NOT_FINITE = ["NaN", "Infinity", "-Infinity", "1e999", "gt-1e999", "lt1e999", "gtNaN", "ne NaN"]


class TestNumbersMustBeFiniteDecimals:
    @pytest.mark.parametrize("value", NOT_FINITE)
    @pytest.mark.parametrize("headers", [LENIENT, STRICT])
    def test_a_quantity_that_is_not_a_finite_decimal_is_400(
        self, client: TestClient, value: str, headers: dict[str, str]
    ) -> None:
        response = client.get(
            "/fhir/Observation", params={"value-quantity": value}, headers=headers
        )
        refused(response, "value-quantity")

    @pytest.mark.parametrize("value", NOT_FINITE)
    def test_a_number_that_is_not_a_finite_decimal_is_400(
        self, client: TestClient, value: str
    ) -> None:
        refused(client.get("/fhir/RiskAssessment", params={"probability": value}), "probability")

    def test_the_largest_finite_values_still_search(self, client: TestClient) -> None:
        # 1e300 is stored and found; gt-1e308 (finite) matches every value
        assert ids(client.get("/fhir/Observation", params={"value-quantity": "1e300"}).json()) == [
            "large"
        ]
        response = client.get("/fhir/Observation", params={"value-quantity": "gt-1e308"})
        assert ids(response.json()) == ["large", "small"]


class TestEmptyTokensAndReferences:
    @pytest.mark.parametrize("headers", [LENIENT, STRICT])
    def test_a_token_with_neither_system_nor_code_is_400(
        self, client: TestClient, headers: dict[str, str]
    ) -> None:
        response = client.get("/fhir/Observation", params={"code": "|"}, headers=headers)
        assert "neither a system nor a code" in refused(response, "code")

    @pytest.mark.parametrize("value", ["Patient/", "/", "|"])
    @pytest.mark.parametrize("headers", [LENIENT, STRICT])
    def test_a_reference_without_an_id_is_400(
        self, client: TestClient, value: str, headers: dict[str, str]
    ) -> None:
        response = client.get("/fhir/Observation", params={"subject": value}, headers=headers)
        assert "names no resource" in refused(response, "subject")

    @pytest.mark.parametrize(
        "params",
        [
            {"code": "http://loinc.org|"},
            {"code": "|29463-7"},
            {"subject": "Patient/p"},
            {"subject": "p"},
        ],
    )
    def test_the_valid_forms_still_match(self, client: TestClient, params: dict[str, str]) -> None:
        response = client.get("/fhir/Observation", params=params)
        expected = [] if params.get("code") == "|29463-7" else ["large", "small"]
        assert ids(response.json()) == expected


class TestHasAndFilter:
    """`_has` is implemented (reverse chaining); `_filter` is not, and follows the handling rule
    for parameters the server does not support."""

    @pytest.mark.parametrize("headers", [LENIENT, STRICT])
    def test_has_is_answered_under_either_handling(
        self, client: TestClient, headers: dict[str, str]
    ) -> None:
        params = {"_has:Observation:patient:code": "29463-7"}
        response = client.get("/fhir/Patient", params=params, headers=headers)
        assert response.status_code == 200, response.text
        bundle = response.json()
        assert ids(bundle) == ["p"]
        assert all(e["search"]["mode"] == "match" for e in bundle["entry"])

    @pytest.mark.parametrize("headers", [LENIENT, STRICT])
    def test_a_bare_has_is_400_under_either_handling(
        self, client: TestClient, headers: dict[str, str]
    ) -> None:
        response = client.get(
            "/fhir/Patient", params={"_has": "Observation:patient:code=1234"}, headers=headers
        )
        assert response.status_code == 400, response.text
        assert "_has:Type:reference:parameter" in response.json()["issue"][0]["diagnostics"]

    def test_filter_is_400_under_strict_handling(self, client: TestClient) -> None:
        response = client.get("/fhir/Patient", params={"_filter": "name eq x"}, headers=STRICT)
        assert response.status_code == 400, response.text
        diagnostics = response.json()["issue"][0]["diagnostics"]
        assert "'_filter' is not supported" in diagnostics

    def test_filter_is_ignored_with_a_warning_under_lenient_handling(
        self, client: TestClient
    ) -> None:
        response = client.get("/fhir/Patient", params={"_filter": "name eq x"}, headers=LENIENT)
        assert response.status_code == 200, response.text
        bundle = response.json()
        assert ids(bundle) == ["p"]
        (outcome,) = [e for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
        assert "_filter" in outcome["resource"]["issue"][0]["diagnostics"]
        self_link = next(link["url"] for link in bundle["link"] if link["relation"] == "self")
        assert "_filter" not in self_link
