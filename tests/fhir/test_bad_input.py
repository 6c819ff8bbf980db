"""Bad requests are refused with an OperationOutcome and leave nothing behind.

R4 http.html: "400 Bad Request - resource could not be parsed or failed basic FHIR validation
rules", "404 Not Found - resource type not supported", "415 Unsupported Media Type"; json.html:
null values, empty arrays and empty objects never appear, and primitives use the JSON type of
their FHIR type (boolean -> true/false, integer/decimal -> number).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from carebridge.app import create_app
from carebridge.config import Settings
from carebridge.fhir.tables import resource, resource_history, search_string, search_token
from tests.conftest import bearer
from tests.fhir.conftest import FHIR_JSON, put


def rows(engine: Engine) -> dict[str, int]:
    """Row counts of the resource tables and two index tables: what a failed write must not
    change."""
    with engine.connect() as conn:
        return {
            table.name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
            for table in (resource, resource_history, search_string, search_token)
        }


EMPTY = {"resource": 0, "resource_history": 0, "search_string": 0, "search_token": 0}


def outcome(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    body: dict[str, Any] = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["severity"] in ("error", "fatal")
    return body


class TestMalformedBodies:
    @pytest.mark.parametrize(
        "raw",
        [
            b'{"resourceType": "Patient",',
            b"not json at all",
            b'{"resourceType": "Patient", "name": [{"family": "x"]}',
            '{"resourceType":"Patient","name":[{"family":"\u00e9"}]}'.encode("latin-1"),
        ],
    )
    def test_malformed_json_is_400(self, client: TestClient, engine: Engine, raw: bytes) -> None:
        outcome(client.post("/fhir/Patient", content=raw, headers=FHIR_JSON), 400)
        assert rows(engine) == EMPTY

    @pytest.mark.parametrize("raw", [b"", b"   ", b"[]", b'"Patient"', b"42", b"null"])
    def test_a_body_that_is_not_an_object_is_400(
        self, client: TestClient, engine: Engine, raw: bytes
    ) -> None:
        outcome(client.post("/fhir/Patient", content=raw, headers=FHIR_JSON), 400)
        assert rows(engine) == EMPTY

    def test_malformed_json_in_a_transaction_is_400(
        self, client: TestClient, engine: Engine
    ) -> None:
        response = client.post("/fhir", content=b'{"resourceType": "Bundle"', headers=FHIR_JSON)
        outcome(response, 400)
        assert rows(engine) == EMPTY


class TestResourceTypes:
    def test_a_resource_type_other_than_the_urls_is_400(
        self, client: TestClient, engine: Engine
    ) -> None:
        body = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}
        response = client.post("/fhir/Patient", json=body, headers=FHIR_JSON)
        issue = outcome(response, 400)["issue"][0]
        assert "Observation" in issue["diagnostics"]
        assert "Patient" in issue["diagnostics"]
        assert rows(engine) == EMPTY

    def test_an_update_with_another_type_is_400(self, client: TestClient, engine: Engine) -> None:
        put(client, {"resourceType": "Patient", "id": "p1"})
        before = rows(engine)
        response = client.put(
            "/fhir/Patient/p1",
            json={"resourceType": "Practitioner", "id": "p1"},
            headers=FHIR_JSON,
        )
        outcome(response, 400)
        assert rows(engine) == before

    def test_a_missing_resource_type_is_400(self, client: TestClient, engine: Engine) -> None:
        response = client.post("/fhir/Patient", json={"gender": "male"}, headers=FHIR_JSON)
        outcome(response, 400)
        assert rows(engine) == EMPTY

    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("post", "/fhir/Nonsense"),
            ("get", "/fhir/Nonsense/1"),
            ("put", "/fhir/Nonsense/1"),
            ("delete", "/fhir/Nonsense/1"),
            ("get", "/fhir/Nonsense"),
            ("get", "/fhir/patient"),
        ],
    )
    def test_an_unknown_resource_type_is_404(
        self, client: TestClient, engine: Engine, method: str, path: str
    ) -> None:
        kwargs: dict[str, Any] = {}
        if method in ("post", "put"):
            kwargs = {"json": {"resourceType": "Nonsense", "id": "1"}, "headers": FHIR_JSON}
        outcome(getattr(client, method)(path, **kwargs), 404)
        assert rows(engine) == EMPTY

    def test_an_unknown_resource_type_in_the_body_is_400(
        self, client: TestClient, engine: Engine
    ) -> None:
        response = client.post(
            "/fhir/Patient", json={"resourceType": "Nonsense"}, headers=FHIR_JSON
        )
        outcome(response, 400)
        assert rows(engine) == EMPTY


class TestInvalidElements:
    @pytest.mark.parametrize(
        ("body", "expression"),
        [
            ({"birthDate": "2020-13-01"}, "Patient.birthDate"),
            ({"birthDate": "2020-02-30"}, "Patient.birthDate"),
            ({"birthDate": "01/02/2020"}, "Patient.birthDate"),
            ({"active": "yes"}, "Patient.active"),
            ({"active": 1}, "Patient.active"),
            ({"multipleBirthInteger": "2"}, "Patient.multipleBirthInteger"),
            ({"multipleBirthInteger": True}, "Patient.multipleBirthInteger"),
            ({"gender": "robot"}, "Patient.gender"),
            ({"gender": None}, "Patient.gender"),
            ({"name": []}, "Patient.name"),
            ({"name": [{}]}, "Patient.name[0]"),
            ({"name": [{"given": "Eve"}]}, "Patient.name[0].given"),
            ({"name": [{"family": 7}]}, "Patient.name[0].family"),
            ({"telecom": [{"system": "phone", "value": None}]}, "Patient.telecom[0].value"),
            ({"nickname": "Evie"}, "Patient.nickname"),
        ],
    )
    def test_the_outcome_names_the_element(
        self, client: TestClient, engine: Engine, body: dict[str, Any], expression: str
    ) -> None:
        response = client.post(
            "/fhir/Patient", json={"resourceType": "Patient", **body}, headers=FHIR_JSON
        )
        issues = outcome(response, 400)["issue"]
        assert any(expression in issue.get("expression", []) for issue in issues), issues
        assert rows(engine) == EMPTY

    def test_nested_types_are_checked(self, client: TestClient, engine: Engine) -> None:
        body = {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "weight"},
            "valueQuantity": {"value": "72.5", "unit": "kg"},
        }
        issues = outcome(client.post("/fhir/Observation", json=body, headers=FHIR_JSON), 400)
        assert "Observation.valueQuantity.value" in issues["issue"][0]["expression"]
        assert rows(engine) == EMPTY

    def test_a_missing_required_element_is_400(self, client: TestClient, engine: Engine) -> None:
        # Observation.status and Observation.code are 1..1
        response = client.post(
            "/fhir/Observation",
            json={"resourceType": "Observation", "code": {"text": "x"}},
            headers=FHIR_JSON,
        )
        issues = outcome(response, 400)["issue"]
        assert any("Observation.status" in i.get("expression", []) for i in issues)
        assert rows(engine) == EMPTY

    def test_primitive_extensions_and_their_null_placeholders_are_valid(
        self, client: TestClient
    ) -> None:
        # json.html: "given": ["Eve", null], "_given": [null, {"extension": [...]}]
        extension = {"url": "http://example.org/nickname", "valueBoolean": True}
        body = {
            "resourceType": "Patient",
            "birthDate": "1970-03-30",
            "_birthDate": {"extension": [{"url": "http://example.org/t", "valueTime": "14:35:45"}]},
            "name": [{"given": ["Eve", "Evie"], "_given": [None, {"extension": [extension]}]}],
        }
        response = client.post("/fhir/Patient", json=body, headers=FHIR_JSON)
        assert response.status_code == 201, response.text

    def test_an_invalid_update_keeps_the_current_version(
        self, client: TestClient, engine: Engine
    ) -> None:
        put(client, {"resourceType": "Patient", "id": "p1", "gender": "male"})
        before = rows(engine)
        response = client.put(
            "/fhir/Patient/p1",
            json={"resourceType": "Patient", "id": "p1", "birthDate": "2020-13-01"},
            headers=FHIR_JSON,
        )
        outcome(response, 400)
        assert rows(engine) == before
        current = client.get("/fhir/Patient/p1").json()
        assert (current["meta"]["versionId"], current["gender"]) == ("1", "male")

    @pytest.mark.parametrize("res_id", ["bad_id!", "x" * 65, "a b"])
    def test_an_invalid_id_is_400(self, client: TestClient, engine: Engine, res_id: str) -> None:
        response = client.put(
            f"/fhir/Patient/{res_id}",
            json={"resourceType": "Patient", "id": res_id},
            headers=FHIR_JSON,
        )
        assert response.status_code == 400
        assert rows(engine) == EMPTY

    def test_an_id_different_from_the_url_is_400(self, client: TestClient, engine: Engine) -> None:
        response = client.put(
            "/fhir/Patient/p1", json={"resourceType": "Patient", "id": "p2"}, headers=FHIR_JSON
        )
        assert "Patient.id" in outcome(response, 400)["issue"][0]["expression"]
        assert rows(engine) == EMPTY


class TestMediaTypes:
    @pytest.mark.parametrize(
        "content_type",
        [
            "text/plain",
            "application/fhir+xml",
            "application/xml",
            "application/x-www-form-urlencoded",
        ],
    )
    def test_a_body_that_is_not_fhir_json_is_415(
        self, client: TestClient, engine: Engine, content_type: str
    ) -> None:
        response = client.post(
            "/fhir/Patient",
            content=b'{"resourceType": "Patient"}',
            headers={"content-type": content_type},
        )
        outcome(response, 415)
        assert rows(engine) == EMPTY

    @pytest.mark.parametrize(
        "content_type",
        ["application/fhir+json", "application/json", "application/fhir+json; charset=utf-8"],
    )
    def test_json_media_types_are_accepted(self, client: TestClient, content_type: str) -> None:
        response = client.post(
            "/fhir/Patient",
            content=b'{"resourceType": "Patient"}',
            headers={"content-type": content_type},
        )
        assert response.status_code == 201


class TestSearchInput:
    def test_an_unknown_parameter_under_strict_handling_is_400(self, client: TestClient) -> None:
        response = client.get(
            "/fhir/Patient",
            params={"favourite-colour": "blue"},
            headers={"Prefer": "handling=strict"},
        )
        assert "favourite-colour" in outcome(response, 400)["issue"][0]["diagnostics"]

    @pytest.mark.parametrize(
        ("params"),
        [
            {"birthdate": "last tuesday"},
            {"birthdate": "ge2020-13"},
            {"_count": "many"},
            {"_count": "-5"},
            {"given:sounds-like": "eve"},
            {"gender:missing": "perhaps"},
            {"_sort": "favourite-colour"},
            {"_include": "Patient"},
            {"_summary": "brief"},
        ],
    )
    def test_a_malformed_search_is_400(self, client: TestClient, params: dict[str, str]) -> None:
        outcome(client.get("/fhir/Patient", params=params), 400)

    def test_a_conditional_create_with_an_unknown_parameter_is_400(
        self, client: TestClient, engine: Engine
    ) -> None:
        response = client.post(
            "/fhir/Patient",
            json={"resourceType": "Patient"},
            headers={**FHIR_JSON, "If-None-Exist": "favourite-colour=blue"},
        )
        outcome(response, 400)
        assert rows(engine) == EMPTY


class TestSizeLimits:
    @pytest.fixture
    def small_client(self, settings: Settings, engine: Engine) -> Iterator[TestClient]:
        app = create_app(settings.model_copy(update={"max_request_bytes": 500}), migrate=False)
        with TestClient(app, base_url="http://testserver", headers=bearer(settings)) as test_client:
            yield test_client
        app.state.engine.dispose()

    def test_a_body_over_the_limit_is_413(self, small_client: TestClient, engine: Engine) -> None:
        body = {"resourceType": "Patient", "name": [{"family": "x" * 600}]}
        response = small_client.post("/fhir/Patient", json=body, headers=FHIR_JSON)
        assert outcome(response, 413)["issue"][0]["code"] == "too-costly"
        assert rows(engine) == EMPTY

    def test_a_bundle_over_the_limit_is_413(self, small_client: TestClient, engine: Engine) -> None:
        entry = {
            "request": {"method": "POST", "url": "Patient"},
            "resource": {"resourceType": "Patient"},
        }
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [entry] * 20}
        outcome(small_client.post("/fhir", json=bundle, headers=FHIR_JSON), 413)
        assert rows(engine) == EMPTY

    def test_a_body_under_the_limit_is_accepted(self, small_client: TestClient) -> None:
        response = small_client.post(
            "/fhir/Patient", json={"resourceType": "Patient"}, headers=FHIR_JSON
        )
        assert response.status_code == 201


class TestUnsupportedInteractions:
    def test_patch_is_405(self, client: TestClient) -> None:
        outcome(client.patch("/fhir/Patient/p1", json=[], headers=FHIR_JSON), 405)

    def test_a_version_that_is_not_a_number_is_404(self, client: TestClient) -> None:
        put(client, {"resourceType": "Patient", "id": "p1"})
        outcome(client.get("/fhir/Patient/p1/_history/abc"), 404)

    def test_a_delete_without_criteria_on_a_type_is_refused(
        self, client: TestClient, engine: Engine
    ) -> None:
        put(client, {"resourceType": "Patient", "id": "p1"})
        before = rows(engine)
        response = client.delete("/fhir/Patient")
        assert 400 <= response.status_code < 500
        assert rows(engine) == before


@pytest.fixture
def client(shared_client: TestClient) -> TestClient:
    return shared_client
