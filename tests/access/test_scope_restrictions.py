"""SMART v2 scopes with search restrictions (`patient/Observation.rs?category=...`, SMART App
Launch 2.0 "Finer-grained resource constraints using search parameters") are enforced in the
store like any other part of the caller's scope."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from carebridge.access.scopes import InvalidScopeError, parse_scope
from carebridge.app import create_app
from carebridge.config import Settings
from tests.access.consent_population import load, patient, visible_ids
from tests.conftest import bearer

CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


def observation(oid: str, category: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": [{"coding": [{"system": CATEGORY, "code": category}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}]},
        "subject": {"reference": "Patient/ann"},
    }


@pytest.fixture
def world(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings)
    with TestClient(app, base_url="http://testserver") as client:
        resources = [
            patient("ann"),
            observation("lab-1", "laboratory"),
            observation("vitals-1", "vital-signs"),
            observation("survey-1", "survey"),
        ]
        load(client, bearer(settings, "system/*.cruds"), resources)
        yield client
    app.state.engine.dispose()


def test_a_restricted_scope_sees_only_matching_resources(
    world: TestClient, settings: Settings
) -> None:
    scope = f"patient/Patient.rs patient/Observation.rs?category={CATEGORY}|laboratory"
    auth = bearer(settings, scope, patient="ann")
    assert visible_ids(world, auth, "/fhir/Observation") == {"Observation/lab-1"}
    count = world.get("/fhir/Observation", params={"_summary": "count"}, headers=auth)
    assert count.json()["total"] == 1
    assert world.get("/fhir/Observation/lab-1", headers=auth).status_code == 200
    assert world.get("/fhir/Observation/vitals-1", headers=auth).status_code == 404
    everything = visible_ids(world, auth, "/fhir/Patient/ann/$everything")
    assert "Observation/vitals-1" not in everything
    assert "Observation/lab-1" in everything


def test_a_search_pinned_to_the_patient_keeps_the_restriction(
    world: TestClient, settings: Settings
) -> None:
    scope = f"patient/Patient.rs patient/Observation.rs?category={CATEGORY}|laboratory"
    auth = bearer(settings, scope, patient="ann")
    pinned = visible_ids(world, auth, "/fhir/Observation", patient="ann")
    assert pinned == {"Observation/lab-1"}
    count = world.get(
        "/fhir/Observation", params={"patient": "ann", "_summary": "count"}, headers=auth
    )
    assert count.json()["total"] == 1


def test_several_restricted_scopes_add_up_and_an_unrestricted_one_lifts_them(
    world: TestClient, settings: Settings
) -> None:
    two = (
        f"patient/Observation.rs?category={CATEGORY}|laboratory "
        f"patient/Observation.rs?category={CATEGORY}|vital-signs"
    )
    auth = bearer(settings, two, patient="ann")
    assert visible_ids(world, auth, "/fhir/Observation") == {
        "Observation/lab-1",
        "Observation/vitals-1",
    }
    lifted = bearer(settings, f"{two} patient/Observation.rs", patient="ann")
    assert len(visible_ids(world, lifted, "/fhir/Observation")) == 3


def test_a_restriction_on_an_unknown_parameter_shows_nothing(
    world: TestClient, settings: Settings
) -> None:
    auth = bearer(settings, "patient/Observation.rs?nonsense=1", patient="ann")
    assert visible_ids(world, auth, "/fhir/Observation") == set()


def test_restrictions_on_every_type_are_refused() -> None:
    with pytest.raises(InvalidScopeError):
        parse_scope("patient/*.rs?category=laboratory")
