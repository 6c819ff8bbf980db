"""Each patient's links to actors, kept with the search index (search/access_links.py, ADR 0015):
the rows a resource writes (rules markers of Consents included), their replacement on update and
delete, and the fills of migrations 0008 and 0009."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from carebridge.access.roles import PAYMENT_LINKS, TREATMENT_LINKS
from carebridge.fhir.records import Method, WriteOp
from carebridge.fhir.schema import downgrade, upgrade
from carebridge.fhir.search.access_links import SUMMARIZED
from carebridge.fhir.search.extract import index_rows
from carebridge.fhir.store import FhirStore
from carebridge.fhir.tables import search_access
from carebridge.kit.db import create_db_engine

PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "p1",
    "generalPractitioner": [
        {"reference": "Practitioner/d1"},
        {"display": "Dr Nobody"},  # no reference: no actor
    ],
    "managingOrganization": {"reference": "Organization/o1"},
}
CARE_TEAM: dict[str, Any] = {
    "resourceType": "CareTeam",
    "id": "ct1",
    "subject": {"reference": "Patient/p1"},
    "participant": [
        {"member": {"reference": "Practitioner/d2"}},
        {"member": {"reference": "Organization/o2"}},
    ],
}
COVERAGE: dict[str, Any] = {
    "resourceType": "Coverage",
    "id": "cov1",
    "status": "active",
    "beneficiary": {"reference": "Patient/p2"},
    "payor": [{"reference": "Organization/payer"}],
}
EPISODE: dict[str, Any] = {
    "resourceType": "EpisodeOfCare",
    "id": "ep1",
    "status": "active",
    "patient": {"reference": "Patient/p3"},
    "managingOrganization": {"reference": "Organization/o3"},
    "careManager": {"reference": "Practitioner/d3"},
}

CONSENT: dict[str, Any] = {
    "resourceType": "Consent",
    "id": "c1",
    "status": "active",
    "scope": {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                "code": "patient-privacy",
            }
        ]
    },
    "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
    "patient": {"reference": "Patient/p1"},
    "dateTime": "2026-01-01T00:00:00Z",
    "provision": {
        "type": "deny",
        "provision": [
            {"type": "permit", "actor": [{"reference": {"reference": "Organization/o1"}}]}
        ],
    },
}


def rows(resource: dict[str, Any]) -> set[tuple[str, str, str, str]]:
    return set(index_rows(resource).access)


class TestRows:
    def test_a_patient_links_itself_to_its_practitioners_and_organisation(self) -> None:
        assert rows(PATIENT) == {
            ("general-practitioner", "p1", "Practitioner", "d1"),
            ("organization", "p1", "Organization", "o1"),
        }

    def test_a_care_team_links_its_patient_to_each_member(self) -> None:
        assert rows(CARE_TEAM) == {
            ("participant", "p1", "Practitioner", "d2"),
            ("participant", "p1", "Organization", "o2"),
        }

    def test_a_care_team_about_a_group_links_no_patient(self) -> None:
        assert rows({**CARE_TEAM, "subject": {"reference": "Group/g1"}}) == set()

    def test_a_coverage_links_its_beneficiary_to_the_payor(self) -> None:
        assert rows(COVERAGE) == {("payor", "p2", "Organization", "payer")}

    def test_an_episode_links_its_patient_to_manager_and_organisation(self) -> None:
        assert rows(EPISODE) == {
            ("care-manager", "p3", "Practitioner", "d3"),
            ("organization", "p3", "Organization", "o3"),
        }

    def test_clinical_data_and_encounters_write_none(self) -> None:
        encounter = {
            "resourceType": "Encounter",
            "id": "e1",
            "status": "finished",
            "class": {"code": "AMB"},
            "subject": {"reference": "Patient/p1"},
            "participant": [{"individual": {"reference": "Practitioner/d1"}}],
        }
        observation = {
            "resourceType": "Observation",
            "id": "o",
            "status": "final",
            "code": {"text": "x"},
            "subject": {"reference": "Patient/p1"},
        }
        assert rows(encounter) == set()
        assert rows(observation) == set()

    def test_a_consent_with_rules_marks_its_patient_once(self) -> None:
        assert rows(CONSENT) == {("rule", "p1", "Consent", "c1")}

    def test_a_consent_that_governs_nothing_marks_no_one(self) -> None:
        assert rows({**CONSENT, "status": "inactive"}) == set()
        assert rows({**CONSENT, "scope": {"text": "research"}}) == set()

    def test_the_summarized_kinds_are_the_roles_kinds_but_encounters(self) -> None:
        roles = set(TREATMENT_LINKS) | set(PAYMENT_LINKS)
        assert roles >= SUMMARIZED
        assert {r.res_type for r in roles - SUMMARIZED} == {"Encounter"}


def stored(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        table = search_access
        found = conn.execute(
            select(
                table.c.res_type,
                table.c.param,
                table.c.patient_id,
                table.c.actor_type,
                table.c.actor_id,
            )
        )
        return sorted(tuple(r) for r in found)


def write(engine: Engine, *resources: dict[str, Any], method: Method = Method.PUT) -> None:
    with engine.begin() as conn:
        FhirStore(conn).write(
            [
                WriteOp(method, r["resourceType"], r["id"], r if method == Method.PUT else None)
                for r in resources
            ]
        )


class TestStore:
    def test_updates_and_deletes_replace_the_rows(self, engine: Engine) -> None:
        write(engine, PATIENT, CARE_TEAM)
        assert len(stored(engine)) == 4
        write(engine, {**CARE_TEAM, "participant": CARE_TEAM["participant"][:1]})
        assert ("CareTeam", "participant", "p1", "Organization", "o2") not in stored(engine)
        assert ("CareTeam", "participant", "p1", "Practitioner", "d2") in stored(engine)
        write(engine, CARE_TEAM, method=Method.DELETE)
        assert {r[0] for r in stored(engine)} == {"Patient"}

    def test_a_consent_keeps_its_marker_while_it_governs(self, engine: Engine) -> None:
        marker = ("Consent", "rule", "p1", "Consent", "c1")
        write(engine, PATIENT, CONSENT)
        assert marker in stored(engine)
        write(engine, {**CONSENT, "status": "inactive"})
        assert marker not in stored(engine)
        write(engine, CONSENT)
        write(engine, CONSENT, method=Method.DELETE)
        assert {r[0] for r in stored(engine)} == {"Patient"}


def test_migration_0008_fills_the_rows_writes_would_have(fresh_url: str) -> None:
    engine = create_db_engine(fresh_url)
    upgrade(engine)
    write(engine, PATIENT, CARE_TEAM, COVERAGE, EPISODE)
    written = stored(engine)
    assert len(written) == 7
    downgrade(engine, "0007")
    upgrade(engine)
    assert stored(engine) == written
    engine.dispose()


def test_migration_0009_fills_the_markers_writes_would_have(fresh_url: str) -> None:
    engine = create_db_engine(fresh_url)
    upgrade(engine)
    write(engine, PATIENT, CONSENT, {**CONSENT, "id": "c2", "patient": {"reference": "Patient/p2"}})
    written = stored(engine)
    assert [r for r in written if r[0] == "Consent"] == [
        ("Consent", "rule", "p1", "Consent", "c1"),
        ("Consent", "rule", "p2", "Consent", "c2"),
    ]
    downgrade(engine, "0008")
    assert [r for r in stored(engine) if r[0] == "Consent"] == []
    upgrade(engine)
    assert stored(engine) == written
    engine.dispose()
