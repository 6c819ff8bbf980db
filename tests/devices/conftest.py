"""Fixtures for the device registry and transports: an API client with the device router, and
helpers to register devices for existing patients."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import Depends
from fastapi.testclient import TestClient

import carebridge.devices.tables  # noqa: F401  (registers the device tables for cleanup)
from carebridge.access.guard import install_guard
from carebridge.app import create_app
from carebridge.config import Settings
from carebridge.devices import endpoints as device_endpoints
from carebridge.devices.gateway import BrokerAddress
from tests.conftest import bearer
from tests.devices.mqtt_support import drop_session


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings)
    app.include_router(device_endpoints.router, dependencies=[Depends(install_guard)])
    app.include_router(device_endpoints.readings_router)
    headers = bearer(settings)
    with TestClient(app, base_url="http://testserver", headers=headers) as test_client:
        yield test_client
    app.state.engine.dispose()


def make_patient(client: TestClient, patient_id: str = "pat-1") -> str:
    response = client.put(
        f"/fhir/Patient/{patient_id}",
        json={"resourceType": "Patient", "id": patient_id, "gender": "female"},
    )
    assert response.status_code in (200, 201), response.text
    return patient_id


def register(client: TestClient, **body: Any) -> dict[str, Any]:
    body.setdefault("kind", "bp")
    response = client.post("/devices", json=body)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


def bp(time: str, systolic: int = 128, diastolic: int = 82, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "bp",
        "time": time,
        "systolic": systolic,
        "diastolic": diastolic,
        "unit": "mmHg",
        **extra,
    }


@pytest.fixture(scope="module")
def broker_url() -> str:
    url = os.environ.get("CAREBRIDGE_TEST_MQTT_URL", "mqtt://127.0.0.1:1883")
    address = BrokerAddress.parse(url)
    try:
        socket.create_connection((address.host, address.port), timeout=2).close()
    except OSError as exc:
        pytest.fail(f"the MQTT broker at {url} is unreachable ({exc}); start mosquitto")
    return url


@pytest.fixture
def gateway_id(broker_url: str) -> Iterator[str]:
    client_id = f"cb-test-gw-{uuid.uuid4().hex[:8]}"
    yield client_id
    drop_session(broker_url, client_id)
