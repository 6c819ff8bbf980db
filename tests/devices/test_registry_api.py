"""Device registry over the API and the service: Device resources, credentials, retirement."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from carebridge.devices import credentials
from carebridge.devices.tables import device_credential
from tests.devices.conftest import make_patient, register


class TestRegister:
    def test_creates_a_device_linked_to_the_patient(self, client: TestClient) -> None:
        make_patient(client, "pat-1")
        made = register(client, patient="pat-1", kind="glucose", vendor="Velora Medical")
        device = client.get(f"/fhir/Device/{made['device']}").json()
        assert device["patient"] == {"reference": "Patient/pat-1"}
        assert device["status"] == "active"
        assert device["manufacturer"] == "Velora Medical"
        assert device["type"]["coding"][0]["code"] == "glucose"

    def test_links_the_selling_store_as_owner(self, client: TestClient) -> None:
        make_patient(client, "pat-1")
        client.put(
            "/fhir/Organization/store-9",
            json={"resourceType": "Organization", "id": "store-9", "name": "Store 9"},
        )
        made = register(client, patient="pat-1", store="store-9")
        assert made["resource"]["owner"] == {"reference": "Organization/store-9"}

    def test_links_a_location_store(self, client: TestClient) -> None:
        make_patient(client, "pat-1")
        client.put(
            "/fhir/Location/loc-3", json={"resourceType": "Location", "id": "loc-3", "name": "L"}
        )
        made = register(client, patient="pat-1", store="loc-3")
        assert made["resource"]["location"] == {"reference": "Location/loc-3"}

    def test_unknown_patient_is_404(self, client: TestClient) -> None:
        response = client.post("/devices", json={"patient": "nobody", "kind": "bp"})
        assert response.status_code == 404
        assert response.json()["resourceType"] == "OperationOutcome"

    def test_unknown_kind_is_400(self, client: TestClient) -> None:
        make_patient(client)
        response = client.post("/devices", json={"patient": "pat-1", "kind": "thermometer"})
        assert response.status_code == 400

    def test_same_id_twice_is_409(self, client: TestClient) -> None:
        make_patient(client)
        register(client, patient="pat-1", id="cuff-1")
        response = client.post("/devices", json={"patient": "pat-1", "kind": "bp", "id": "cuff-1"})
        assert response.status_code == 409


class TestCredential:
    def test_only_a_salted_hash_is_stored(self, client: TestClient, engine: Engine) -> None:
        make_patient(client)
        made = register(client, patient="pat-1", id="cuff-1")
        token = made["credential"]
        assert token.startswith("cuff-1.")
        with engine.connect() as conn:
            row = conn.execute(select(device_credential)).one()
        secret = token.rpartition(".")[2]
        assert secret not in (row.secret_hash, row.secret_salt)
        assert len(row.secret_salt) == 32

    def test_hash_matches_the_token_and_nothing_else(self) -> None:
        issued = credentials.issue("cuff-1")
        stored = credentials.StoredCredential(
            "cuff-1", issued.secret_hash, issued.secret_salt, False
        )
        assert credentials.matches(issued.token, stored)
        assert not credentials.matches(issued.token + "x", stored)
        assert not credentials.matches("cuff-2." + issued.token.rpartition(".")[2], stored)

    def test_two_devices_get_different_salts_and_secrets(self) -> None:
        a, b = credentials.issue("d"), credentials.issue("d")
        assert a.token != b.token
        assert a.secret_salt != b.secret_salt

    def test_cache_forgets_a_rotated_hash(self) -> None:
        cache = credentials.VerifiedCredentials()
        issued = credentials.issue("d")
        stored = credentials.StoredCredential("d", issued.secret_hash, issued.secret_salt, False)
        assert cache.check(issued.token, stored)
        rotated = credentials.issue("d")
        new = credentials.StoredCredential("d", rotated.secret_hash, rotated.secret_salt, False)
        assert not cache.check(issued.token, new)
        assert cache.check(rotated.token, new)

    def test_device_of_reads_the_prefix(self) -> None:
        assert credentials.device_of("a.b.secret") == "a.b"
        assert credentials.device_of("nodot") is None
        assert credentials.device_of(".secret") is None


class TestListAndRetire:
    def test_list_shows_status_patient_and_kind(self, client: TestClient) -> None:
        make_patient(client)
        register(client, patient="pat-1", id="cuff-1")
        register(client, patient="pat-1", id="scale-1", kind="weight")
        client.post("/devices/scale-1/$retire")
        devices = client.get("/devices").json()["devices"]
        assert devices == [
            {"device": "cuff-1", "patient": "pat-1", "kind": "bp", "status": "active"},
            {"device": "scale-1", "patient": "pat-1", "kind": "weight", "status": "retired"},
        ]

    def test_retire_marks_the_device_inactive(self, client: TestClient) -> None:
        make_patient(client)
        register(client, patient="pat-1", id="cuff-1")
        response = client.post("/devices/cuff-1/$retire")
        assert response.status_code == 200
        assert client.get("/fhir/Device/cuff-1").json()["status"] == "inactive"

    def test_retire_unknown_is_404(self, client: TestClient) -> None:
        assert client.post("/devices/nope/$retire").status_code == 404


class TestRegistryAccess:
    def test_registry_needs_an_access_token(self, client: TestClient) -> None:
        response = client.get("/devices", headers={"Authorization": ""})
        assert response.status_code == 401

    def test_a_device_credential_is_not_an_access_token(self, client: TestClient) -> None:
        make_patient(client)
        token = register(client, patient="pat-1")["credential"]
        response = client.get("/devices", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
