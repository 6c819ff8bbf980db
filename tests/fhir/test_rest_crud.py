"""The RESTful interactions of R4 http.html: create, read, vread, update, delete, history."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.fhir.conftest import FHIR_JSON, create, put

PATIENT = {
    "resourceType": "Patient",
    "name": [{"family": "Chalmers", "given": ["Peter"]}],
    "gender": "male",
}


class TestCreate:
    def test_create_assigns_id_version_and_location(self, client: TestClient) -> None:
        response = client.post("/fhir/Patient", json=PATIENT, headers=FHIR_JSON)
        assert response.status_code == 201
        body = response.json()
        assert body["meta"]["versionId"] == "1"
        assert response.headers["ETag"] == 'W/"1"'
        assert response.headers["Location"].endswith(f"/fhir/Patient/{body['id']}/_history/1")
        assert response.headers["content-type"].startswith("application/fhir+json")

    def test_create_ignores_a_client_supplied_id(self, client: TestClient) -> None:
        body = create(client, {**PATIENT, "id": "chosen-by-client"})
        assert body["id"] != "chosen-by-client"

    def test_prefer_minimal_returns_no_body(self, client: TestClient) -> None:
        response = client.post(
            "/fhir/Patient", json=PATIENT, headers={**FHIR_JSON, "Prefer": "return=minimal"}
        )
        assert response.status_code == 201
        assert response.content == b""
        assert "Location" in response.headers

    def test_prefer_operation_outcome_returns_an_outcome(self, client: TestClient) -> None:
        response = client.post(
            "/fhir/Patient",
            json=PATIENT,
            headers={**FHIR_JSON, "Prefer": "return=OperationOutcome"},
        )
        assert response.status_code == 201
        assert response.json()["resourceType"] == "OperationOutcome"

    def test_conditional_create_returns_the_existing_match(self, client: TestClient) -> None:
        first = create(client, {**PATIENT, "identifier": [{"system": "urn:mrn", "value": "7"}]})
        response = client.post(
            "/fhir/Patient",
            json={**PATIENT, "identifier": [{"system": "urn:mrn", "value": "7"}]},
            headers={**FHIR_JSON, "If-None-Exist": "identifier=urn:mrn|7"},
        )
        assert response.status_code == 200
        assert response.json()["id"] == first["id"]
        assert client.get("/fhir/Patient", params={"identifier": "urn:mrn|7"}).json()["total"] == 1

    def test_conditional_create_with_several_matches_is_412(self, client: TestClient) -> None:
        create(client, {**PATIENT, "gender": "other"})
        create(client, {**PATIENT, "gender": "other"})
        response = client.post(
            "/fhir/Patient", json=PATIENT, headers={**FHIR_JSON, "If-None-Exist": "gender=other"}
        )
        assert response.status_code == 412
        assert response.json()["resourceType"] == "OperationOutcome"


class TestReadAndVread:
    def test_read_returns_the_current_version(self, client: TestClient) -> None:
        created = create(client, PATIENT)
        response = client.get(f"/fhir/Patient/{created['id']}")
        assert response.status_code == 200
        assert response.json()["name"][0]["family"] == "Chalmers"
        assert response.headers["ETag"] == 'W/"1"'

    def test_read_of_unknown_id_is_404_outcome(self, client: TestClient) -> None:
        response = client.get("/fhir/Patient/does-not-exist")
        assert response.status_code == 404
        assert response.json()["issue"][0]["code"] == "not-found"

    def test_unknown_resource_type_is_404(self, client: TestClient) -> None:
        response = client.get("/fhir/Patientt/1")
        assert response.status_code == 404
        assert "Patientt" in response.json()["issue"][0]["diagnostics"]

    def test_vread_returns_each_version(self, client: TestClient) -> None:
        created = put(client, {**PATIENT, "id": "v1"})
        put(client, {**created, "gender": "female"})
        assert client.get("/fhir/Patient/v1/_history/1").json()["gender"] == "male"
        assert client.get("/fhir/Patient/v1/_history/2").json()["gender"] == "female"
        assert client.get("/fhir/Patient/v1/_history/3").status_code == 404


class TestUpdate:
    def test_update_as_create_uses_the_client_id(self, client: TestClient) -> None:
        response = client.put(
            "/fhir/Patient/pat-1", json={**PATIENT, "id": "pat-1"}, headers=FHIR_JSON
        )
        assert response.status_code == 201
        assert response.json()["id"] == "pat-1"

    def test_update_increments_the_version(self, client: TestClient) -> None:
        put(client, {**PATIENT, "id": "pat-2"})
        response = client.put(
            "/fhir/Patient/pat-2",
            json={**PATIENT, "id": "pat-2", "gender": "female"},
            headers=FHIR_JSON,
        )
        assert response.status_code == 200
        assert response.json()["meta"]["versionId"] == "2"

    def test_identical_update_creates_no_new_version(self, client: TestClient) -> None:
        put(client, {**PATIENT, "id": "pat-3"})
        again = put(client, {**PATIENT, "id": "pat-3"})
        assert again["meta"]["versionId"] == "1"
        assert client.get("/fhir/Patient/pat-3/_history").json()["total"] == 1

    def test_id_mismatch_is_400(self, client: TestClient) -> None:
        response = client.put("/fhir/Patient/a", json={**PATIENT, "id": "b"}, headers=FHIR_JSON)
        assert response.status_code == 400
        assert response.json()["issue"][0]["expression"] == ["Patient.id"]

    def test_if_match_with_the_current_version_succeeds(self, client: TestClient) -> None:
        put(client, {**PATIENT, "id": "lock"})
        response = client.put(
            "/fhir/Patient/lock",
            json={**PATIENT, "id": "lock", "gender": "other"},
            headers={**FHIR_JSON, "If-Match": 'W/"1"'},
        )
        assert response.status_code == 200

    def test_if_match_with_a_stale_version_is_412_and_changes_nothing(
        self, client: TestClient
    ) -> None:
        put(client, {**PATIENT, "id": "lock2"})
        put(client, {**PATIENT, "id": "lock2", "gender": "female"})
        response = client.put(
            "/fhir/Patient/lock2",
            json={**PATIENT, "id": "lock2", "gender": "other"},
            headers={**FHIR_JSON, "If-Match": 'W/"1"'},
        )
        assert response.status_code == 412
        assert response.json()["resourceType"] == "OperationOutcome"
        assert client.get("/fhir/Patient/lock2").json()["gender"] == "female"

    def test_conditional_update_updates_the_single_match(self, client: TestClient) -> None:
        created = create(client, {**PATIENT, "identifier": [{"system": "urn:mrn", "value": "9"}]})
        response = client.put(
            "/fhir/Patient",
            params={"identifier": "urn:mrn|9"},
            json={
                **PATIENT,
                "identifier": [{"system": "urn:mrn", "value": "9"}],
                "gender": "female",
            },
            headers=FHIR_JSON,
        )
        assert response.status_code == 200
        assert response.json()["id"] == created["id"]
        assert response.json()["meta"]["versionId"] == "2"

    def test_conditional_update_without_match_creates(self, client: TestClient) -> None:
        response = client.put(
            "/fhir/Patient",
            params={"identifier": "urn:mrn|10"},
            json={**PATIENT, "identifier": [{"system": "urn:mrn", "value": "10"}]},
            headers=FHIR_JSON,
        )
        assert response.status_code == 201


class TestDeleteAndHistory:
    def test_delete_then_read_is_410_gone(self, client: TestClient) -> None:
        put(client, {**PATIENT, "id": "gone"})
        assert client.delete("/fhir/Patient/gone").status_code == 204
        response = client.get("/fhir/Patient/gone")
        assert response.status_code == 410
        assert response.json()["resourceType"] == "OperationOutcome"

    def test_deleted_resource_leaves_search_but_keeps_history(self, client: TestClient) -> None:
        put(client, {**PATIENT, "id": "hist"})
        client.delete("/fhir/Patient/hist")
        assert client.get("/fhir/Patient", params={"_id": "hist"}).json()["total"] == 0
        history = client.get("/fhir/Patient/hist/_history").json()
        assert history["type"] == "history"
        assert [e["request"]["method"] for e in history["entry"]] == ["DELETE", "PUT"]
        assert "resource" not in history["entry"][0]
        assert client.get("/fhir/Patient/hist/_history/1").status_code == 200

    def test_create_after_delete_revives_with_a_new_version(self, client: TestClient) -> None:
        put(client, {**PATIENT, "id": "again"})
        client.delete("/fhir/Patient/again")
        response = client.put(
            "/fhir/Patient/again", json={**PATIENT, "id": "again"}, headers=FHIR_JSON
        )
        assert response.status_code == 201
        assert response.json()["meta"]["versionId"] == "3"

    def test_type_and_system_history_list_every_version(self, client: TestClient) -> None:
        put(client, {**PATIENT, "id": "h1"})
        put(client, {**PATIENT, "id": "h1", "gender": "female"})
        put(client, {"resourceType": "Organization", "id": "o1", "name": "Store 1"})
        assert client.get("/fhir/Patient/_history").json()["total"] == 2
        system = client.get("/fhir/_history", params={"_count": 100}).json()
        clinical = [e for e in system["entry"] if e["resource"]["resourceType"] != "AuditEvent"]
        assert len(clinical) == 3  # every access also left an AuditEvent, listed here too

    def test_history_since_filters_older_versions(self, client: TestClient) -> None:
        put(client, {**PATIENT, "id": "h2"})
        bundle = client.get("/fhir/Patient/_history", params={"_since": "2999-01-01"}).json()
        assert bundle["total"] == 0

    def test_conditional_delete_removes_the_match(self, client: TestClient) -> None:
        create(client, {**PATIENT, "identifier": [{"system": "urn:mrn", "value": "del"}]})
        assert (
            client.delete("/fhir/Patient", params={"identifier": "urn:mrn|del"}).status_code == 204
        )
        assert (
            client.get("/fhir/Patient", params={"identifier": "urn:mrn|del"}).json()["total"] == 0
        )


class TestCapabilityStatement:
    def test_metadata_declares_only_indexed_parameters(self, client: TestClient) -> None:
        statement = client.get("/fhir/metadata").json()
        assert statement["fhirVersion"] == "4.0.1"
        resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
        observation = {p["name"]: p["type"] for p in resources["Observation"]["searchParam"]}
        assert observation["code"] == "token"
        assert observation["date"] == "date"
        assert "code-value-quantity" not in observation  # composite: not indexed, not declared
        assert {"code": "transaction"} in statement["rest"][0]["interaction"]

    def test_metadata_has_no_empty_values(self, client: TestClient) -> None:
        # json.html: "arrays ... must not be empty", objects must have content, strings must not
        # be empty and null is only a placeholder inside primitive arrays
        statement = client.get("/fhir/metadata").json()
        empty: list[str] = []

        def walk(value: Any, path: str) -> None:
            if value in ([], {}, "", None):
                empty.append(path)
            elif isinstance(value, dict):
                for key, item in value.items():
                    walk(item, f"{path}.{key}")
            elif isinstance(value, list):
                for index, item in enumerate(value):
                    walk(item, f"{path}[{index}]")

        walk(statement, "CapabilityStatement")
        assert empty == []

    def test_search_include_is_declared_only_where_there_are_references(
        self, client: TestClient
    ) -> None:
        resources = {
            r["type"]: r for r in client.get("/fhir/metadata").json()["rest"][0]["resource"]
        }
        assert "Observation:subject" in resources["Observation"]["searchInclude"]
        without = [t for t, r in resources.items() if "searchInclude" not in r]
        assert without  # e.g. types whose search parameters include no reference
        assert all(p["type"] != "reference" for t in without for p in resources[t]["searchParam"])
