"""Every /fhir endpoint needs a token; scopes and patient context are enforced in the store's SQL;
every access and every refusal leaves an AuditEvent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from carebridge.app import create_app
from carebridge.config import Settings
from tests.access.consent_population import wait_for_export
from tests.conftest import bearer

JSON = {"content-type": "application/fhir+json"}


@pytest.fixture
def app_client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings)
    with TestClient(app, base_url="http://testserver") as client:
        yield client
    app.state.engine.dispose()


@pytest.fixture
def admin(settings: Settings) -> dict[str, str]:
    return bearer(settings, "system/*.cruds")


def put(client: TestClient, auth: dict[str, str], resource: dict[str, Any]) -> None:
    path = f"/fhir/{resource['resourceType']}/{resource['id']}"
    response = client.put(path, json=resource, headers={**JSON, **auth})
    assert response.status_code in (200, 201), response.text


def observation(oid: str, patient: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "performer": [{"reference": "Practitioner/doc"}],
    }


@pytest.fixture
def two_patients(app_client: TestClient, admin: dict[str, str]) -> TestClient:
    put(app_client, admin, {"resourceType": "Practitioner", "id": "doc"})
    for pid in ("alice", "bob"):
        put(app_client, admin, {"resourceType": "Patient", "id": pid})
        put(app_client, admin, observation(f"obs-{pid}", pid))
    return app_client


def audit_events(client: TestClient, admin: dict[str, str]) -> list[dict[str, Any]]:
    bundle = client.get("/fhir/AuditEvent", params={"_count": 500}, headers=admin).json()
    return [e["resource"] for e in bundle.get("entry", [])]


class TestAuthentication:
    def test_metadata_is_open(self, app_client: TestClient) -> None:
        assert app_client.get("/fhir/metadata").status_code == 200

    def test_no_token_is_401_with_a_challenge_and_is_audited(
        self, app_client: TestClient, admin: dict[str, str]
    ) -> None:
        response = app_client.get("/fhir/Patient")
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.json()["resourceType"] == "OperationOutcome"
        refusals = [e for e in audit_events(app_client, admin) if e["outcome"] == "4"]
        assert refusals
        assert refusals[0]["agent"][0]["altId"] == "anonymous"

    def test_a_token_signed_by_another_key_is_401(
        self, app_client: TestClient, settings: Settings, tmp_path: Any
    ) -> None:
        other = settings.model_copy(update={"token_key_dir": tmp_path / "other-keys"})
        response = app_client.get("/fhir/Patient", headers=bearer(other))
        assert response.status_code == 401
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]

    @pytest.mark.parametrize("path", ["/fhir/Patient", "/fhir/_history", "/fhir/$export"])
    def test_every_fhir_route_needs_a_token(self, app_client: TestClient, path: str) -> None:
        assert app_client.get(path).status_code == 401


class TestScopes:
    def test_missing_scope_is_403_and_audited(
        self, two_patients: TestClient, settings: Settings, admin: dict[str, str]
    ) -> None:
        reader = bearer(settings, "system/Observation.rs")
        response = two_patients.get("/fhir/Patient", headers=reader)
        assert response.status_code == 403
        assert response.json()["issue"][0]["code"] == "forbidden"
        refused = [e for e in audit_events(two_patients, admin) if e["outcome"] == "4"]
        assert any("Patient" in (e.get("outcomeDesc") or "") for e in refused)

    def test_read_only_scope_cannot_write(
        self, two_patients: TestClient, settings: Settings
    ) -> None:
        reader = bearer(settings, "system/*.rs")
        response = two_patients.put(
            "/fhir/Patient/alice",
            json={"resourceType": "Patient", "id": "alice"},
            headers={**JSON, **reader},
        )
        assert response.status_code == 403

    def test_include_does_not_leak_types_outside_the_scopes(
        self, two_patients: TestClient, settings: Settings
    ) -> None:
        reader = bearer(settings, "system/Observation.rs")
        bundle = two_patients.get(
            "/fhir/Observation", params={"_include": "Observation:performer"}, headers=reader
        ).json()
        types = {e["resource"]["resourceType"] for e in bundle["entry"]}
        assert types == {"Observation"}


class TestPatientContext:
    @pytest.fixture
    def alice(self, settings: Settings) -> dict[str, str]:
        return bearer(settings, "patient/*.rs", patient="alice")

    def test_search_returns_and_counts_only_the_patients_own_data(
        self, two_patients: TestClient, alice: dict[str, str]
    ) -> None:
        bundle = two_patients.get("/fhir/Observation", headers=alice).json()
        assert bundle["total"] == 1
        assert [e["resource"]["id"] for e in bundle["entry"]] == ["obs-alice"]

    def test_another_patients_resource_is_not_found(
        self, two_patients: TestClient, alice: dict[str, str]
    ) -> None:
        assert two_patients.get("/fhir/Observation/obs-bob", headers=alice).status_code == 404
        assert two_patients.get("/fhir/Patient/bob", headers=alice).status_code == 404
        assert two_patients.get("/fhir/Patient/alice", headers=alice).status_code == 200

    def test_reading_another_patients_resource_is_audited_as_a_failure(
        self, two_patients: TestClient, alice: dict[str, str], settings: Settings
    ) -> None:
        response = two_patients.get("/fhir/Observation/obs-bob", headers=alice)
        assert response.json()["resourceType"] == "OperationOutcome"
        admin = bearer(settings, "system/*.rs")
        failed = [
            e
            for e in audit_events(two_patients, admin)
            if e["outcome"] != "0" and e["subtype"][0]["code"] == "read"
        ]
        assert failed, "the refused read left no AuditEvent"
        assert {"reference": "Observation/obs-bob"} in [
            x.get("what") for x in failed[-1].get("entity", [])
        ]

    def test_chained_search_and_summary_count_stay_in_the_compartment(
        self, two_patients: TestClient, alice: dict[str, str]
    ) -> None:
        chained = two_patients.get(
            "/fhir/Observation", params={"subject:Patient._id": "bob"}, headers=alice
        )
        assert chained.json()["total"] == 0
        count = two_patients.get("/fhir/Observation", params={"_summary": "count"}, headers=alice)
        assert count.json()["total"] == 1

    def test_revinclude_does_not_leak_other_patients(
        self, two_patients: TestClient, alice: dict[str, str]
    ) -> None:
        bundle = two_patients.get(
            "/fhir/Practitioner", params={"_revinclude": "Observation:performer"}, headers=alice
        ).json()
        observations = [
            e["resource"]["id"]
            for e in bundle["entry"]
            if e["resource"]["resourceType"] == "Observation"
        ]
        assert observations == ["obs-alice"]

    def test_everything_of_another_patient_is_not_found(
        self, two_patients: TestClient, alice: dict[str, str]
    ) -> None:
        assert two_patients.get("/fhir/Patient/bob/$everything", headers=alice).status_code == 404
        own = two_patients.get("/fhir/Patient/alice/$everything", headers=alice).json()
        ids = {e["resource"]["id"] for e in own["entry"]}
        assert "obs-bob" not in ids
        assert {"alice", "obs-alice"} <= ids

    def test_export_holds_only_the_patients_own_data_and_only_they_may_fetch_it(
        self, two_patients: TestClient, alice: dict[str, str], settings: Settings
    ) -> None:
        kick = two_patients.get("/fhir/$export", headers={**alice, "Prefer": "respond-async"})
        assert kick.status_code == 202, kick.text
        status = kick.headers["Content-Location"].replace("http://testserver", "")
        bob = bearer(settings, "patient/*.rs", patient="bob")
        manifest = wait_for_export(two_patients, status, alice)
        assert two_patients.get(status, headers=bob).status_code == 404
        ids = set()
        for output in manifest["output"]:
            url = output["url"].replace("http://testserver", "")
            assert two_patients.get(url, headers=bob).status_code == 404
            lines = two_patients.get(url, headers=alice).text.splitlines()
            ids |= {json.loads(line)["id"] for line in lines}
        assert {"alice", "obs-alice"} <= ids
        assert not ids & {"bob", "obs-bob"}


class TestAuditTrail:
    def test_a_read_leaves_an_audit_event_naming_client_and_resource(
        self, two_patients: TestClient, settings: Settings, admin: dict[str, str]
    ) -> None:
        team = {
            "resourceType": "CareTeam",
            "id": "alice-team",
            "subject": {"reference": "Patient/alice"},
            "participant": [{"member": {"reference": "Practitioner/doc"}}],
        }
        put(two_patients, admin, team)
        reader = bearer(settings, "user/*.rs", fhir_user="Practitioner/doc")
        assert two_patients.get("/fhir/Observation/obs-alice", headers=reader).status_code == 200
        reads = [e for e in audit_events(two_patients, admin) if e["subtype"][0]["code"] == "read"]
        assert reads
        event = reads[-1]
        assert event["agent"][0]["who"] == {"reference": "Practitioner/doc"}
        assert {"reference": "Observation/obs-alice"} in [x.get("what") for x in event["entity"]]

    def test_audit_events_are_append_only(
        self, two_patients: TestClient, admin: dict[str, str]
    ) -> None:
        event = audit_events(two_patients, admin)[0]
        assert (
            two_patients.delete(f"/fhir/AuditEvent/{event['id']}", headers=admin).status_code == 405
        )
        put_response = two_patients.put(
            f"/fhir/AuditEvent/{event['id']}", json=event, headers={**JSON, **admin}
        )
        assert put_response.status_code == 405
