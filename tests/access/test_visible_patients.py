"""Sets of a policy's visible patients (fhir/visible_patients.py, ADR 0017): what goes
in a set, that a write of access data by another connection is enforced on the next request,
that a stale set is never believed, and that every kind of access data changes the version."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, inspect, select, text

from carebridge.access.guard import current_role
from carebridge.access.role_lookup import ConsentDefaults
from carebridge.access.roles import choose_purpose, policy_for
from carebridge.app import create_app
from carebridge.config import Settings
from carebridge.fhir import visible_patients
from carebridge.fhir.access_version import VISIBLE_TABLE, read_version
from carebridge.fhir.guard import KnownVisible, PatientPolicy
from carebridge.fhir.schema import downgrade, upgrade
from carebridge.fhir.search.policy_sql import policy_condition
from carebridge.fhir.tables import resource
from carebridge.fhir.visible_patients import VisibleSet
from carebridge.kit.clock import current_minute
from carebridge.kit.db import create_db_engine
from tests.access.consent_population import (
    care_team,
    clinical_data,
    consent,
    coverage,
    load,
    organization,
    patient,
    practitioner_with_role,
    provision,
    ref,
    visible_ids,
)
from tests.conftest import bearer

PHARMACIST = "Practitioner/pharm"


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings)
    with TestClient(app) as c:
        yield c
    app.state.engine.dispose()


def population() -> list[dict[str, Any]]:
    """p0: the pharmacist's store's, no rules. p1: the store's, an Observation-only deny (a
    rule naming a type: never in a set). p2: the store's, denies everything to the
    pharmacist. p3: not related. p4: another store's, a rule permits the pharmacist by name."""
    resources: list[dict[str, Any]] = [
        organization("store1"),
        organization("store2"),
        *practitioner_with_role("pharm", "store1"),
        patient("p0", "store1"),
        patient("p1", "store1"),
        patient("p2", "store1"),
        patient("p3"),
        patient("p4", "store2"),
        consent(
            "c1", "p1", provision("permit", nested=[provision("deny", types=("Observation",))])
        ),
        consent("c2", "p2", provision("deny", actor=PHARMACIST)),
        consent("c4", "p4", provision("permit", actor=PHARMACIST)),
    ]
    for pid in ("p0", "p1", "p2", "p3", "p4"):
        resources.extend(clinical_data(pid))
    return resources


def pharmacist_policy(engine: Engine) -> PatientPolicy:
    now = current_minute()
    role = current_role(engine, PHARMACIST, ConsentDefaults(), now)
    assert role is not None
    return policy_for(role, choose_purpose(role, None), now)


def known(engine: Engine, policy: PatientPolicy, res_type: str) -> KnownVisible | None:
    with engine.connect() as conn:
        return visible_patients.known_visible(conn, policy, res_type)


def held(conn: Connection, known: KnownVisible) -> set[str]:
    rows = conn.execute(
        text(f"SELECT patient_id FROM {VISIBLE_TABLE} WHERE set_id = :s"), {"s": known.set_id}
    )
    return {r[0] for r in rows}


def searched(
    conn: Connection, policy: PatientPolicy, res_type: str, known: KnownVisible
) -> set[str]:
    """The ids of `res_type` a statement under `policy` with the set `known` returns."""
    statement = select(resource.c.res_id).where(
        resource.c.res_type == res_type, policy_condition(policy, [res_type], known=known)
    )
    return {r[0] for r in conn.execute(statement)}


def test_a_set_holds_the_related_patients_whose_data_of_its_type_is_visible(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    load(client, bearer(settings), population())
    policy = pharmacist_policy(engine)
    assert known(engine, policy, "Observation") is None  # the first request decides per row
    with engine.connect() as conn:
        built = visible_patients.known_visible(conn, policy, "Observation")
        assert built is not None
        assert held(conn, built) == {"p0", "p4"}
        assert built == visible_patients.known_visible(conn, policy, "Observation")  # kept
        assert visible_patients.known_visible(conn, policy, "Condition") is None  # per type
        conditions = visible_patients.known_visible(conn, policy, "Condition")
        assert conditions is not None
        assert held(conn, conditions) == {"p0", "p1", "p4"}
        for _ in range(2):  # hidden, or not patient data: no set
            assert visible_patients.known_visible(conn, policy, "AuditEvent") is None
            assert visible_patients.known_visible(conn, policy, "Organization") is None
    auth = bearer(settings, "user/*.rs", fhir_user=PHARMACIST)
    assert visible_ids(client, auth, "/fhir/Observation") == {
        "Observation/obs-p0",
        "Observation/obs-p4",
    }
    assert visible_ids(client, auth, "/fhir/Condition") == {
        "Condition/cond-p0",
        "Condition/cond-p1",
        "Condition/cond-p4",
    }


def test_a_consent_written_elsewhere_is_enforced_on_the_next_search(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    load(client, bearer(settings), population())
    auth = bearer(settings, "user/*.rs", fhir_user=PHARMACIST)
    for _ in range(3):  # the set is built and used
        assert "Observation/obs-p0" in visible_ids(client, auth, "/fhir/Observation")
    policy = pharmacist_policy(engine)
    with client.app.state.engine.connect() as conn:  # the app's sets, built by its searches
        stale = visible_patients.known_visible(conn, policy, "Observation")
        assert stale is not None
        assert "p0" in held(conn, stale)
        load(client, bearer(settings), [consent("c0", "p0", provision("deny", actor=PHARMACIST))])
        # the old set is still on this connection, and says nothing at the new version
        assert "p0" in held(conn, stale)
        assert searched(conn, policy, "Observation", stale) == {"obs-p4"}
        patients = visible_patients.known_visible(conn, policy, "Patient")
        assert patients is None  # the first request at the new version
        assert searched(conn, policy, "Patient", stale) == {"p1", "p4"}  # not of its type
    assert visible_ids(client, auth, "/fhir/Observation") == {"Observation/obs-p4"}
    assert visible_ids(client, auth, "/fhir/Observation") == {"Observation/obs-p4"}  # rebuilt


def test_a_set_is_neither_built_nor_filled_inside_a_transaction(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    load(client, bearer(settings), population())
    policy = pharmacist_policy(engine)
    with engine.begin() as conn:
        # a change of access data pending in the transaction (on SQLite, any write)
        conn.execute(text("UPDATE search_access SET param = param WHERE patient_id = 'p0'"))
        for _ in range(3):
            assert visible_patients.known_visible(conn, policy, "Observation") is None


def test_a_set_larger_than_the_limit_is_not_kept(
    client: TestClient, engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(visible_patients, "MAX_SET", 1)
    load(client, bearer(settings), population())
    policy = pharmacist_policy(engine)
    assert [known(engine, policy, "Observation") for _ in range(3)] == [None, None, None]
    auth = bearer(settings, "user/*.rs", fhir_user=PHARMACIST)
    assert visible_ids(client, auth, "/fhir/Observation") == {
        "Observation/obs-p0",
        "Observation/obs-p4",
    }


ACCESS_WRITES = {
    "a Patient's managing organization": patient("p3", "store1"),
    "a CareTeam": care_team("p3", PHARMACIST),
    "a Coverage": coverage("p3", "store2"),
    "an EpisodeOfCare": {
        "resourceType": "EpisodeOfCare",
        "id": "eoc-p3",
        "status": "active",
        "patient": ref("Patient/p3"),
        "managingOrganization": ref("Organization/store1"),
    },
    "an Encounter": {
        "resourceType": "Encounter",
        "id": "enc-p3",
        "status": "finished",
        "class": {"code": "AMB"},
        "subject": ref("Patient/p3"),
        "serviceProvider": ref("Organization/store1"),
    },
    "a Consent": consent("c3", "p3", provision("permit", actor=PHARMACIST)),
}


@pytest.mark.parametrize("written", sorted(ACCESS_WRITES))
def test_every_kind_of_access_data_changes_the_version(
    client: TestClient, engine: Engine, settings: Settings, written: str
) -> None:
    load(client, bearer(settings), population())
    admin = bearer(settings)
    with engine.connect() as conn:
        before = read_version(conn)[0]
    load(client, admin, [ACCESS_WRITES[written]])
    with engine.connect() as conn:
        created = read_version(conn)[0]
    key = f"{ACCESS_WRITES[written]['resourceType']}/{ACCESS_WRITES[written]['id']}"
    assert client.delete(f"/fhir/{key}", headers=admin).status_code in (200, 204)
    with engine.connect() as conn:
        deleted = read_version(conn)[0]
    assert before < created < deleted


def test_other_data_leaves_the_version_alone(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    load(client, bearer(settings), population())
    with engine.connect() as conn:
        before = read_version(conn)[0]
    observation = {**clinical_data("p3")[0], "id": "obs-p3-2"}
    load(client, bearer(settings), [observation, organization("store3")])
    assert client.get("/fhir/Patient", headers=bearer(settings)).status_code == 200  # audited
    with engine.connect() as conn:
        assert read_version(conn)[0] == before


def test_reads_are_decided_by_the_set_and_a_stale_one_is_not_believed(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    load(client, bearer(settings), population())
    auth = bearer(settings, "user/*.rs", fhir_user=PHARMACIST)
    for _ in range(2):  # the set is built
        visible_ids(client, auth, "/fhir/Observation")
    policy = pharmacist_policy(engine)
    with client.app.state.engine.connect() as conn:
        built = visible_patients.visible_set(conn, policy, "Observation")
    assert built is not None
    assert built.patients == {"p0", "p4"}
    for _ in range(2):  # a set for Conditions too
        visible_ids(client, auth, "/fhir/Condition")
    readable = {
        "Patient/p0": 200,
        "Observation/obs-p0": 200,
        "Observation/obs-p1": 404,  # a rule by type: not in the set of Observations
        "Condition/cond-p1": 200,
        "Observation/obs-p2": 404,
        "Patient/p3": 404,
        "Condition/cond-p4": 200,
    }
    for key, status in readable.items():
        assert client.get(f"/fhir/{key}", headers=auth).status_code == status, key
    load(client, bearer(settings), [consent("c0", "p0", provision("deny", actor=PHARMACIST))])
    with client.app.state.engine.connect() as conn:  # the old set is still the one kept
        assert visible_patients.visible_set(conn, policy, "Observation") == built
    assert client.get("/fhir/Observation/obs-p0", headers=auth).status_code == 404
    assert client.get("/fhir/Patient/p0", headers=auth).status_code == 404
    with client.app.state.engine.connect() as conn:  # and is no longer kept
        assert visible_patients.visible_set(conn, policy, "Observation") != built


def test_the_counter_made_again_does_not_repeat_versions(fresh_url: str) -> None:
    """A downgrade and upgrade under a running server must not bring back a version a set was
    built at: the counter starts from a random value."""
    engine = create_db_engine(fresh_url)
    upgrade(engine)
    with engine.connect() as conn:
        first = read_version(conn)[0]
    downgrade(engine, "0010")
    with engine.connect() as conn:
        assert "access_version" not in inspect(conn).get_table_names()
    upgrade(engine)
    with engine.connect() as conn:
        assert read_version(conn)[0] != first
    engine.dispose()


def test_a_set_holds_over_time_until_a_consent_rule_starts(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    """A set is kept across the policy's minutes while no Consent rule starts or ends between
    (policies are decided to the minute; the rules' periods are data)."""
    now = current_minute()
    starts = now + timedelta(minutes=10)
    deny = {**provision("deny", actor=PHARMACIST), "period": {"start": starts.isoformat()}}
    rules = consent("c0", "p0", provision("permit", nested=[deny]))
    load(client, bearer(settings), [*population(), rules])
    role = current_role(engine, PHARMACIST, ConsentDefaults(), now)
    assert role is not None
    purpose = choose_purpose(role, None)
    with engine.connect() as conn:

        def at(minutes: int) -> VisibleSet | None:
            policy = policy_for(role, purpose, now + timedelta(minutes=minutes))
            return visible_patients.visible_set(conn, policy, "Observation")

        assert at(0) is None
        built = at(0)
        assert built is not None
        assert built.patients == {"p0", "p4"}
        assert at(5) == built  # no rule starts or ends before: the same set
        assert at(10) is None  # the deny is in force: not that set (its first request)
        again = at(10)
        assert again is not None
        assert again.patients == {"p4"}
