"""A user's `PatientPolicy` decided for one patient: a few indexed reads, then Python.

What a search pinned to one patient (`Observation?patient=X`) needs: which of the searched
types of X's data the policy lets the user see. policy_sql.py could answer it per row, but that
statement carries the user's whole actor set (hundreds of CareTeams for a busy clinician) and
repeats it in every subquery. Here the store reads X's facts instead, on the DB-API cursor
(driver_select.py), and policy_decision.py decides them with the same rules:

1. X's Consent rules in force and the actors X's Patient resource names (one statement);
2. only if that does not relate X to the user: the actors of the resources that reference X
   (CareTeam, EpisodeOfCare, Encounter, Coverage, ...), read until the first of the user's
   actors (SQLite stops computing there; an Encounter-heavy record is not read in full).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection

from carebridge.fhir.driver_select import driver_rows
from carebridge.fhir.guard import PatientPolicy
from carebridge.fhir.search.policy_decision import (
    ConsentRule,
    PatientFacts,
    allowed_types,
    related,
)
from carebridge.fhir.search.policy_sql import (
    PINNED_PATIENT,
    POLICY_AT,
    RULE,
    patient_facts_statement,
    patient_links_statement,
)

_NO_FACTS = PatientFacts(frozenset(), ())


def patient_allowed_types(
    conn: Connection, policy: PatientPolicy, patient: str, types: Iterable[str]
) -> frozenset[str]:
    """Those of `types` whose resources in `patient`'s compartment `policy` lets its user see."""
    if policy.override:
        return allowed_types(policy, _NO_FACTS, types)
    facts = _own_facts(conn, policy, patient)
    if not related(policy, facts):
        link = _first_link(conn, policy, patient)
        if link is not None:
            facts = PatientFacts(facts.linked | {link}, facts.rules)
    return allowed_types(policy, facts, types)


def _own_facts(conn: Connection, policy: PatientPolicy, patient: str) -> PatientFacts:
    statement = patient_facts_statement(policy.relationships)
    linked: set[tuple[str | None, str | None]] = set()
    rules: list[ConsentRule] = []
    with driver_rows(conn, statement, {PINNED_PATIENT: patient, POLICY_AT: policy.at}) as rows:
        for kind, *values in rows:
            if kind == RULE:
                rules.append(ConsentRule(*values))
            else:
                linked.add((values[1], values[2]))
    return PatientFacts(frozenset(linked), tuple(rules))


def _first_link(conn: Connection, policy: PatientPolicy, patient: str) -> tuple[str, str] | None:
    """The first actor of the user's that a resource referencing the patient links to."""
    statement = patient_links_statement(policy.relationships)
    if statement is None:
        return None
    with driver_rows(conn, statement, {PINNED_PATIENT: patient}) as rows:
        for actor_type, actor_id in rows:
            if (actor_type, actor_id) in policy.actors:
                return actor_type, actor_id
    return None
