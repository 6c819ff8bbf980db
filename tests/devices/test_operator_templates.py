"""An operator adds a vendor without code: a template folder (CAREBRIDGE_DEVICE_TEMPLATES_DIR,
or `carebridge devices gateway --templates DIR`) is matched before the built-in templates."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from carebridge.app import create_app
from carebridge.config import Settings
from carebridge.devices.service import intake_config
from carebridge.devices.templates import TemplateError
from tests.conftest import bearer
from tests.devices.conftest import make_patient, register

ACME = {
    "name": "acme-scale",
    "description": 'ACME scale: {"acme": [{"what": "mass", "kg": 81.2, "at": iso}]}',
    "readings": "$.acme[*]",
    "match": {"equals": {"$.what": "mass"}},
    "kind": {"fixed": "body-weight"},
    "time": {"path": "$.at", "format": "iso8601"},
    "values": {"value": "$.kg"},
    "unit": {"fixed": "kg"},
}
PAYLOAD = {"acme": [{"what": "mass", "kg": 81.2, "at": "2025-03-01T08:00:00Z"}]}


def client_for(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings)
    with TestClient(app, base_url="http://testserver", headers=bearer(settings)) as client:
        yield client
    app.state.engine.dispose()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "templates"
    path.mkdir()
    (path / "acme-scale.json").write_text(json.dumps(ACME))
    return path


def send(client: TestClient, device: str) -> dict[str, Any]:
    make_patient(client, "pat-1")
    credential = register(client, patient="pat-1", id=device, kind="weight")["credential"]
    response = client.post(
        "/devices/readings", json=PAYLOAD, headers={"Authorization": f"Bearer {credential}"}
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_an_operator_template_makes_a_new_vendor_readable(settings: Settings, folder: Path) -> None:
    for client in client_for(settings):
        assert send(client, "scale-1")["stored"] == 0  # no built-in template knows ACME
    with_folder = settings.model_copy(update={"device_templates_dir": folder})
    for client in client_for(with_folder):
        summary = send(client, "scale-2")
        assert summary["stored"] == 1
        observation = client.get(summary["readings"][0]["observation"].join(["/fhir/", ""]))
        quantity = observation.json()["valueQuantity"]
        assert (quantity["value"], quantity["code"]) == (81.2, "kg")


def test_a_bad_template_folder_is_refused_with_the_file_named(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text(json.dumps({"name": "broken"}))
    with pytest.raises(TemplateError, match=r"broken\.json"):
        intake_config(tmp_path)
