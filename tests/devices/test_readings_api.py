"""`POST /devices/readings`: per-device bearer credential, stored/duplicate/refused outcomes,
dead letters for refused devices and readings, Observation ids from the dedupe key."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from carebridge.devices.kinds import ReadingKind
from carebridge.devices.readings import dedupe_key, parse_time
from carebridge.devices.repository import DeviceRepository
from carebridge.devices.templates import TimeFormat
from tests.devices.conftest import bp, make_patient, register


@pytest.fixture
def cuff(client: TestClient) -> str:
    make_patient(client, "pat-1")
    token: str = register(client, patient="pat-1", id="cuff-1")["credential"]
    return token


def send(client: TestClient, token: str | None, body: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post("/devices/readings", json=body, headers=headers)


def dead_letters(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return [(d.device_id, d.reason) for d in DeviceRepository(conn).dead_letters()]


class TestStoring:
    def test_readings_become_observations_named_by_their_dedupe_key(
        self, client: TestClient, cuff: str
    ) -> None:
        response = send(client, cuff, {"readings": [bp("2025-03-01T08:00:00Z", pulse=70)]})
        assert response.status_code == 200, response.text
        summary = response.json()
        assert (summary["stored"], summary["duplicate"], summary["refused"]) == (2, 0, 0)
        when = parse_time("2025-03-01T08:00:00Z", TimeFormat.ISO8601)
        key = dedupe_key("cuff-1", ReadingKind.BLOOD_PRESSURE, when)
        observation = client.get(f"/fhir/Observation/{key}").json()
        assert observation["subject"] == {"reference": "Patient/pat-1"}
        assert observation["device"] == {"reference": "Device/cuff-1"}
        assert summary["readings"][0]["observation"] == f"Observation/{key}"

    def test_a_resent_batch_is_all_duplicate_and_writes_nothing(
        self, client: TestClient, cuff: str
    ) -> None:
        body = {"readings": [bp("2025-03-01T08:00:00Z"), bp("2025-03-02T08:00:00Z")]}
        send(client, cuff, body)
        again = send(client, cuff, body).json()
        assert (again["stored"], again["duplicate"]) == (0, 2)
        history = client.get("/fhir/Observation/_history").json()
        assert history["total"] == 2

    def test_the_same_reading_twice_in_one_batch_is_stored_once(
        self, client: TestClient, cuff: str
    ) -> None:
        same = bp("2025-03-01T09:00:00+01:00")
        summary = send(client, cuff, {"readings": [same, bp("2025-03-01T08:00:00Z")]}).json()
        assert (summary["stored"], summary["duplicate"]) == (1, 1)

    def test_vendor_payloads_are_recognised(self, client: TestClient, cuff: str) -> None:
        body = {
            "measurements": [{"type": "blood_pressure", "sys": 120, "dia": 80, "ts": 1740816000}]
        }
        assert send(client, cuff, body).json()["stored"] == 1

    def test_late_and_out_of_order_readings_are_accepted_and_skew_recorded(
        self, client: TestClient, cuff: str
    ) -> None:
        body = {"readings": [bp("2099-01-01T00:00:00Z"), bp("2020-01-01T00:00:00Z")]}
        summary = send(client, cuff, body).json()
        assert summary["stored"] == 2
        future = summary["readings"][0]["observation"]
        observation = client.get(f"/fhir/{future}").json()
        assert "device-clock-skew" in observation["extension"][0]["url"]

    def test_bad_readings_are_refused_with_reasons_and_dead_lettered(
        self, client: TestClient, cuff: str, engine: Engine
    ) -> None:
        body = {"readings": [bp("2025-03-01T08:00:00Z"), {"kind": "temperature", "time": "x"}]}
        summary = send(client, cuff, body).json()
        assert (summary["stored"], summary["refused"]) == (1, 1)
        refused = summary["readings"][1]
        assert refused["location"] == "$.readings[1]"
        assert "unknown kind" in refused["reason"]
        assert dead_letters(engine)[0][0] == "cuff-1"
        assert "$.readings[1]" in dead_letters(engine)[0][1]

    def test_the_credential_field_never_reaches_the_dead_letters(
        self, client: TestClient, cuff: str, engine: Engine
    ) -> None:
        send(client, cuff, {"credential": cuff, "readings": [{"kind": "x"}]})
        with engine.connect() as conn:
            payload = DeviceRepository(conn).dead_letters()[0].payload
        assert "credential" not in payload


class TestRefusedDevices:
    def test_missing_credential_is_401(self, client: TestClient, cuff: str) -> None:
        response = send(client, None, {"readings": [bp("2025-03-01T08:00:00Z")]})
        assert response.status_code == 401
        assert response.json()["resourceType"] == "OperationOutcome"
        assert response.headers["www-authenticate"] == "Bearer"

    def test_wrong_secret_is_401_and_stores_nothing(
        self, client: TestClient, cuff: str, engine: Engine
    ) -> None:
        response = send(client, "cuff-1.wrong", {"readings": [bp("2025-03-01T08:00:00Z")]})
        assert response.status_code == 401
        assert client.get("/fhir/Observation").json()["total"] == 0
        assert dead_letters(engine) == []

    def test_unknown_device_is_401_and_dead_lettered(
        self, client: TestClient, engine: Engine
    ) -> None:
        response = send(client, "ghost-7.secret", {"readings": [bp("2025-03-01T08:00:00Z")]})
        assert response.status_code == 401
        assert dead_letters(engine) == [("ghost-7", "unknown device")]

    def test_retired_device_is_refused_and_dead_lettered(
        self, client: TestClient, cuff: str, engine: Engine
    ) -> None:
        client.post("/devices/cuff-1/$retire")
        summary = send(client, cuff, {"readings": [bp("2025-03-01T08:00:00Z")]}).json()
        assert (summary["stored"], summary["refused"]) == (0, 1)
        assert summary["readings"][0]["reason"] == "device retired"
        assert dead_letters(engine) == [("cuff-1", "device retired")]
        assert client.get("/fhir/Observation").json()["total"] == 0

    def test_unlinked_device_is_refused_and_dead_lettered(
        self, client: TestClient, cuff: str, engine: Engine
    ) -> None:
        device = client.get("/fhir/Device/cuff-1").json()
        del device["patient"]
        client.put("/fhir/Device/cuff-1", json=device)
        summary = send(client, cuff, {"readings": [bp("2025-03-01T08:00:00Z")]}).json()
        assert summary["readings"][0]["reason"] == "device not linked to a patient"
        assert dead_letters(engine) == [("cuff-1", "device not linked to a patient")]


class TestAudit:
    def test_stored_readings_leave_an_audit_event_naming_device_and_patient(
        self, client: TestClient, cuff: str
    ) -> None:
        send(client, cuff, {"readings": [bp("2025-03-01T08:00:00Z", pulse=70)]})
        bundle = client.get("/fhir/AuditEvent", params={"patient": "Patient/pat-1"}).json()
        creates = [
            e["resource"]
            for e in bundle.get("entry", [])
            if e["resource"]["subtype"][0]["code"] == "create"
            and e["resource"]["agent"][0].get("who") == {"reference": "Device/cuff-1"}
        ]
        assert len(creates) == 1
        entities = [x["what"]["reference"] for x in creates[0]["entity"]]
        assert "Patient/pat-1" in entities
        assert sum(ref.startswith("Observation/") for ref in entities) == 2

    def test_a_duplicate_batch_writes_no_audit_event(self, client: TestClient, cuff: str) -> None:
        body = {"readings": [bp("2025-03-01T08:00:00Z")]}
        send(client, cuff, body)
        send(client, cuff, body)
        bundle = client.get("/fhir/AuditEvent", params={"_count": 500}).json()
        device_events = [
            e
            for e in bundle.get("entry", [])
            if e["resource"]["agent"][0].get("who") == {"reference": "Device/cuff-1"}
        ]
        assert len(device_events) == 1
