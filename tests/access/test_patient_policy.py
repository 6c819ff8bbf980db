"""One patient's access decided from its facts (fhir/patient_policy.py) gives what the per-row
SQL gives, for every kind of relationship a role counts (access/roles.py), including those read
only after the patient's own facts did not relate the user."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from carebridge.access.roles import PAYMENT_LINKS, TREATMENT_LINKS
from carebridge.config import Settings
from carebridge.fhir.guard import AccessScope, PatientPolicy
from carebridge.fhir.patient_policy import patients_facts, rules_permit, visible_rows
from carebridge.fhir.search.policy_decision import (
    NO_FACTS,
    ConsentRule,
    PatientFacts,
    consented,
)
from carebridge.fhir.search.sql import scope_conditions
from carebridge.fhir.store import FhirStore
from carebridge.fhir.tables import resource
from carebridge.kit.clock import utc_now
from tests.access.consent_population import (
    DATA_TYPES,
    care_team,
    clinical_data,
    consent,
    coverage,
    patient,
    provision,
    ref,
)
from tests.conftest import app_holding

ME = "Practitioner/pharm"
ELSEWHERE = "Practitioner/other"


def episode(pid: str, **refs: str) -> dict[str, Any]:
    out: dict[str, Any] = {"resourceType": "EpisodeOfCare", "id": f"eoc-{pid}", "status": "active"}
    out["patient"] = ref(f"Patient/{pid}")
    if "org" in refs:
        out["managingOrganization"] = ref(refs["org"])
    if "manager" in refs:
        out["careManager"] = ref(refs["manager"])
    return out


def encounter(pid: str, eid: str, **refs: str) -> dict[str, Any]:
    out: dict[str, Any] = {"resourceType": "Encounter", "id": eid, "status": "finished"}
    out["class"] = {"code": "AMB"}
    out["subject"] = ref(f"Patient/{pid}")
    if "participant" in refs:
        out["participant"] = [{"individual": ref(refs["participant"])}]
    if "provider" in refs:
        out["serviceProvider"] = ref(refs["provider"])
    return out


# patient id -> (resources relating them, whether they are the pharmacist's)
CASES: dict[str, tuple[list[dict[str, Any]], bool]] = {
    "p-gp": ([{**patient("p-gp"), "generalPractitioner": [ref(ME)]}], True),
    "p-team": ([care_team("p-team", ME)], True),
    "p-team-other": ([care_team("p-team-other", ELSEWHERE)], False),
    "p-eoc-org": ([episode("p-eoc-org", org="Organization/store1")], True),
    "p-eoc-manager": ([episode("p-eoc-manager", manager=ME)], True),
    "p-visits": (
        [encounter("p-visits", f"enc-p-visits-{n}", participant=ELSEWHERE) for n in range(5)]
        + [encounter("p-visits", "enc-p-visits-me", participant=ME)],
        True,
    ),
    "p-provider": (
        [encounter("p-provider", "enc-p-provider", provider="Organization/store1")],
        True,
    ),
    "p-none": ([encounter("p-none", "enc-p-none", participant=ELSEWHERE)], False),
    "p-named": (
        [consent("c-named", "p-named", provision("deny", nested=[provision("permit", actor=ME)]))],
        True,
    ),
}


def population() -> list[dict[str, Any]]:
    resources: list[dict[str, Any]] = [
        {"resourceType": "Organization", "id": "store1"},
        {"resourceType": "Practitioner", "id": "pharm"},
        {"resourceType": "Practitioner", "id": "other"},
    ]
    for pid, (relating, _) in CASES.items():
        if not any(r["resourceType"] == "Patient" for r in relating):
            resources.append(patient(pid))
        resources += [*relating, *clinical_data(pid), coverage(pid, "payer")]
    return resources


@pytest.fixture
def world(settings: Settings) -> Iterator[TestClient]:
    with app_holding(settings, population()) as client:
        yield client


def policy(links: tuple[Any, ...]) -> PatientPolicy:
    actors = frozenset({("Practitioner", "pharm"), ("Organization", "store1")})
    return PatientPolicy(actors, "TREAT", True, links, utc_now())


def per_row(engine: Engine, the_policy: PatientPolicy, pid: str) -> set[str]:
    ids = {pid, f"obs-{pid}", f"cond-{pid}"}
    with engine.connect() as conn:
        rows = conn.execute(
            select(resource.c.res_type, resource.c.res_id).where(
                resource.c.res_type.in_(DATA_TYPES),
                resource.c.res_id.in_(ids),
                *scope_conditions(AccessScope(policy=the_policy), DATA_TYPES),
            )
        )
        return {r.res_type for r in rows}


@pytest.mark.usefixtures("world")
class TestPatientAllowedTypes:
    @pytest.mark.parametrize("pid", sorted(CASES))
    def test_each_relationship_decides_as_the_per_row_sql(self, engine: Engine, pid: str) -> None:
        the_policy = policy(TREATMENT_LINKS)
        with engine.connect() as conn:
            decided = FhirStore(conn).allowed_types(the_policy, pid, DATA_TYPES)
        assert decided == per_row(engine, the_policy, pid)
        assert decided == (set(DATA_TYPES) if CASES[pid][1] else set())

    def test_payment_links_relate_through_coverage_only(self, engine: Engine) -> None:
        payer = PatientPolicy(
            frozenset({("Organization", "payer")}), "HPAYMT", True, PAYMENT_LINKS, utc_now()
        )
        with engine.connect() as conn:
            for pid in CASES:
                decided = FhirStore(conn).allowed_types(payer, pid, DATA_TYPES)
                assert decided == per_row(engine, payer, pid)
                denied = pid == "p-named"  # its Consent denies everyone but the pharmacist
                assert decided == (set() if denied else set(DATA_TYPES)), pid


@pytest.mark.usefixtures("world")
def test_per_row_statements_of_different_users_keep_their_own_actors(engine: Engine) -> None:
    """The per-row condition is compiled once per shape and keyed by its shape and bound
    parameters (policy_sql.KeyedCondition): statements of users whose policies share a shape,
    run in turn, each see their own actors and default, not the ones first compiled."""
    mine = policy(TREATMENT_LINKS)
    theirs = replace(mine, actors=frozenset({("Practitioner", "other")}))
    opted_in = replace(mine, default_permit=False)
    for _ in range(2):
        assert per_row(engine, mine, "p-team") == set(DATA_TYPES)
        assert per_row(engine, theirs, "p-team") == set()
        assert per_row(engine, theirs, "p-team-other") == set(DATA_TYPES)
        assert per_row(engine, mine, "p-team-other") == set()
        assert per_row(engine, opted_in, "p-team") == set()
    # relationships all summarized (no Encounter kind): the two defaults differ in the
    # statement's text only, not in its bound parameters
    payer = PatientPolicy(
        frozenset({("Organization", "payer")}), "HPAYMT", True, PAYMENT_LINKS, utc_now()
    )
    for _ in range(2):
        assert per_row(engine, payer, "p-team") == set(DATA_TYPES)
        assert per_row(engine, replace(payer, default_permit=False), "p-team") == set()


@pytest.mark.usefixtures("world")
def test_one_patients_facts_are_those_read_with_others(engine: Engine) -> None:
    """The statements for one patient (an equality) read what the statements for a list read."""
    for links in (TREATMENT_LINKS, PAYMENT_LINKS):
        the_policy = replace(policy(links), actors=frozenset({("Organization", "payer")}))
        with engine.connect() as conn:
            together = patients_facts(conn, the_policy, list(CASES))
            for pid in CASES:
                alone = patients_facts(conn, the_policy, [pid])
                assert alone.get(pid, NO_FACTS) == together.get(pid, NO_FACTS), pid


@pytest.mark.usefixtures("world")
def test_a_row_alone_is_decided_as_among_others(engine: Engine) -> None:
    """A single row of a compartment type (a read) is decided with the statement that also finds
    its patients; the same rows decided together give the same answer."""
    for the_policy in (
        policy(TREATMENT_LINKS),
        replace(policy(PAYMENT_LINKS), default_permit=False),
    ):
        with engine.connect() as conn:
            rows = [
                (r.pk, r.res_type, r.res_id)
                for r in conn.execute(
                    select(resource.c.pk, resource.c.res_type, resource.c.res_id).where(
                        resource.c.res_type.in_(DATA_TYPES)
                    )
                )
            ]
            together = visible_rows(conn, the_policy, rows)
            alone = {pk for row in rows for pk in visible_rows(conn, the_policy, [row])}
        assert alone == together
        assert together  # some rows are visible, some not: the comparison says something
        assert len(together) < len(rows)


_RULE_ROWS = st.lists(
    st.tuples(
        st.just("p1"),  # patient
        st.sampled_from(["permit", "deny"]),
        st.sampled_from([(None, None), ("Practitioner", "pharm"), ("Organization", "elsewhere")]),
        st.sampled_from([None, "TREAT", "HPAYMT"]),
        st.sampled_from([None, "Observation", "Condition"]),
        st.sampled_from(["2024-01-01 00:00:00.000000", "2025-06-01 12:00:00.000000"]),
        st.integers(min_value=0, max_value=2),
    ).map(lambda r: [r[0], r[1], r[2][0], r[2][1], r[3], r[4], r[5], r[6]]),
    max_size=6,
)


@given(
    rules=_RULE_ROWS, res_type=st.sampled_from(["Observation", "Condition"]), opt_in=st.booleans()
)
def test_one_pass_decision_is_the_first_applicable_rule_in_deciding_order(
    rules: list[list[Any]], res_type: str, opt_in: bool
) -> None:
    """A read decides a patient's rules in one pass (`rules_permit`, no sort); the reference
    (`consented`) takes the first applicable rule of the rules in deciding order: most recent
    Consent, then deepest provision, then deny before permit."""
    the_policy = replace(policy(TREATMENT_LINKS), default_permit=not opt_in)
    ordered = sorted(rules, key=lambda r: (r[6], r[7], r[1] == "deny"), reverse=True)
    facts = PatientFacts(frozenset(), tuple(ConsentRule._make(r[1:6]) for r in ordered))
    assert rules_permit(the_policy, rules, res_type) == consented(the_policy, facts, res_type)
