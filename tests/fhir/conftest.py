from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from carebridge.app import create_app
from carebridge.config import Settings
from tests.conftest import bearer

FHIR_JSON = {"content-type": "application/fhir+json"}


@pytest.fixture(scope="module")
def module_client(
    migrated_engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """One app per backend and test module; `shared_client` empties the tables per test."""
    settings = Settings(
        database_url=migrated_engine.url.render_as_string(hide_password=False),
        export_dir=Path(tmp_path_factory.mktemp("export")),
        token_key_dir=Path(tmp_path_factory.mktemp("keys")),
    )
    app = create_app(settings, migrate=False)
    with TestClient(app, base_url="http://testserver", headers=bearer(settings)) as test_client:
        yield test_client
    app.state.engine.dispose()


@pytest.fixture
def shared_client(module_client: TestClient, engine: Engine) -> TestClient:
    """The module's client on emptied tables (`engine` empties them)."""
    return module_client


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings)
    with TestClient(app, base_url="http://testserver", headers=bearer(settings)) as test_client:
        yield test_client
    app.state.engine.dispose()


def create(client: TestClient, resource: dict[str, Any], **headers: str) -> dict[str, Any]:
    response = client.post(
        f"/fhir/{resource['resourceType']}", json=resource, headers={**FHIR_JSON, **headers}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def put(client: TestClient, resource: dict[str, Any]) -> dict[str, Any]:
    response = client.put(
        f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource, headers=FHIR_JSON
    )
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


def search(client: TestClient, path: str, **params: Any) -> dict[str, Any]:
    response = client.get(f"/fhir/{path}", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def ids(bundle: dict[str, Any], mode: str = "match") -> list[str]:
    return sorted(
        e["resource"]["id"]
        for e in bundle.get("entry", [])
        if e.get("search", {}).get("mode") == mode
    )
