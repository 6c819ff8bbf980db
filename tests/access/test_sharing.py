"""Patient-facing sharing: the patient sees who accessed their record and grants or revokes
sharing with a payer or provider; the decision is a Consent the store enforces at once."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from carebridge.config import Settings
from tests.access.consent_population import visible_ids
from tests.conftest import bearer

# Fixtures `world` (the sharing population behind an app) and `ann` (her patient token) are in
# tests/conftest.py: the patient's web pages are tested on the same population.


def test_a_payer_sees_nothing_until_the_patient_shares_and_nothing_after_revoking(
    world: TestClient, settings: Settings, ann: dict[str, str]
) -> None:
    payer = bearer(settings, "user/*.rs", fhir_user="Organization/payer")
    assert visible_ids(world, payer, "/fhir/Observation") == set()

    grant = world.put(
        "/patient/sharing/Organization/payer",
        json={"access": "permit", "types": ["Observation"], "purpose": "HPAYMT"},
        headers=ann,
    )
    assert grant.status_code == 200, grant.text
    assert grant.json()["decisions"] == [
        {
            "actor": "Organization/payer",
            "access": "permit",
            "types": ["Observation"],
            "purpose": "HPAYMT",
        }
    ]
    assert visible_ids(world, payer, "/fhir/Observation") == {"Observation/obs-ann"}
    assert visible_ids(world, payer, "/fhir/Condition") == set()

    assert world.delete("/patient/sharing/Organization/payer", headers=ann).status_code == 200
    assert visible_ids(world, payer, "/fhir/Observation") == set()
    assert world.get("/patient/sharing", headers=ann).json()["decisions"] == []


def test_a_patient_can_opt_out_of_a_provider(
    world: TestClient, settings: Settings, ann: dict[str, str]
) -> None:
    pharmacist = bearer(settings, "user/*.rs", fhir_user="Practitioner/pharm")
    before = visible_ids(world, pharmacist, "/fhir/Observation")
    assert before == {"Observation/obs-ann", "Observation/obs-ben"}
    response = world.put(
        "/patient/sharing/Organization/store1", json={"access": "deny"}, headers=ann
    )
    assert response.status_code == 200
    assert visible_ids(world, pharmacist, "/fhir/Observation") == {"Observation/obs-ben"}
    summary = world.get("/patient/sharing", headers=ann).json()
    assert summary["defaults"] == {"TREAT": "opt-out", "HPAYMT": "opt-in"}
    assert [d["access"] for d in summary["decisions"]] == ["deny"]


def test_the_access_log_shows_who_read_the_record(
    world: TestClient, settings: Settings, ann: dict[str, str]
) -> None:
    pharmacist = bearer(settings, "user/*.rs", fhir_user="Practitioner/pharm")
    assert world.get("/fhir/Observation/obs-ann", headers=pharmacist).status_code == 200
    log = world.get("/patient/access-log", headers=ann)
    assert log.status_code == 200, log.text
    entries = log.json()["entries"]
    reads = [e for e in entries if e["who"] == "Practitioner/pharm" and e["action"] == "read"]
    assert reads
    assert "Observation/obs-ann" in reads[0]["resources"]
    assert reads[0]["purpose"] == "TREAT"
    ben = bearer(settings, "patient/*.rs", patient="ben")
    ben_log = world.get("/patient/access-log", headers=ben).json()["entries"]
    assert not any("Observation/obs-ann" in e["resources"] for e in ben_log)


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/patient/sharing/Patient/ben", {"access": "permit"}, 400),
        ("/patient/sharing/Organization/payer", {"access": "maybe"}, 400),
        ("/patient/sharing/Organization/payer", {"access": "permit", "types": ["Nope"]}, 400),
    ],
)
def test_bad_choices_are_refused(
    world: TestClient, ann: dict[str, str], path: str, body: dict[str, object], status: int
) -> None:
    response = world.put(path, json=body, headers=ann)
    assert response.status_code == status
    assert response.json()["resourceType"] == "OperationOutcome"


def test_only_a_patient_manages_sharing(world: TestClient, settings: Settings) -> None:
    pharmacist = bearer(settings, "user/*.cruds", fhir_user="Practitioner/pharm")
    assert world.get("/patient/sharing", headers=pharmacist).status_code == 403
    assert world.get("/patient/access-log").status_code == 401
