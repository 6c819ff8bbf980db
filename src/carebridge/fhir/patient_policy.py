"""A user's `PatientPolicy` decided per patient: a few indexed reads, then Python.

policy_sql.py decides the policy per row in SQL, and its statement carries the user's whole
actor set (hundreds of CareTeams for a busy clinician) into every subquery. When the rows to
decide are known and few (a read, the visibility check of a write, a search pinned to one
patient), the store reads their patients' facts instead, on the DB-API cursor
(driver_select.py), with statements that carry none of the user (policy_facts_sql.py), and
policy_decision.py decides them with the same rules:

1. the patients' Consent rules in force and the actors their summary rows link them to (their
   Patient resources' own references, CareTeams, EpisodeOfCares, Coverages: access_links.py):
   one statement; for a read, the statement that finds the resource (`read_decided`), which
   also finds the patients whose compartment it is in;
2. for the patients those do not relate to the user: the actors of the kinds not summarized
   (Encounter), asked only about the patients still unrelated, so the Encounters of a patient
   its CareTeam already relates are never read.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Select

from carebridge.fhir.driver_select import driver_row, driver_rows
from carebridge.fhir.guard import PatientPolicy
from carebridge.fhir.records import StoredResource
from carebridge.fhir.search.derived import compartment_index_params
from carebridge.fhir.search.policy_decision import (
    NO_FACTS,
    PERMIT,
    Candidate,
    ConsentRule,
    PatientFacts,
    allowed_types,
    related,
    visible_keys,
)
from carebridge.fhir.search.policy_facts_sql import (
    LINK,
    PATIENT,
    PATIENTS,
    POLICY_AT,
    RES_ID,
    ROW_KEY,
    ROW_KEYS,
    RULE,
    Patients,
    compartment_links_statement,
    patient_facts_statement,
    patient_links_statements,
    read_statement,
    row_statement,
)
from carebridge.fhir.tables import resource
from carebridge.fhir.visible_patients import VisibleSet, saw_version, visible_set


def patient_allowed_types(
    conn: Connection, policy: PatientPolicy, patient: str, types: Iterable[str]
) -> frozenset[str]:
    """Those of `types` whose resources in `patient`'s compartment `policy` lets its user see."""
    facts = patients_facts(conn, policy, [patient]).get(patient, NO_FACTS)
    return allowed_types(policy, facts, types)


def visible_rows(conn: Connection, policy: PatientPolicy, rows: Sequence[Candidate]) -> set[int]:
    """The keys of those `rows` that `policy` lets its user see."""
    members = compartment_index_params()
    if len(rows) == 1 and not policy.override:
        pk, res_type, _ = rows[0]
        if res_type in members and res_type != "Patient":  # a read: one statement
            patients, facts = _row_facts(conn, policy, pk, members[res_type])
            return visible_keys(policy, rows, {pk: patients}, facts, members.keys())
    linked = [pk for pk, t, _ in rows if t in members and t != "Patient"]
    patients_of = _compartment_patients(conn, linked, {pk: t for pk, t, _ in rows}, members)
    patients = {i for _, t, i in rows if t == "Patient"}
    patients.update(p for found in patients_of.values() for p in found)
    facts = patients_facts(conn, policy, patients)
    return visible_keys(policy, rows, patients_of, facts, members.keys())


def patients_facts(
    conn: Connection, policy: PatientPolicy, patients: Collection[str]
) -> dict[str, PatientFacts]:
    """What decides `policy` for each of `patients` (nothing to read when it is overridden)."""
    if policy.override or not patients:
        return {}
    which, values = _which(patients)
    _, facts = _own_facts(conn, policy, which, values)
    return _with_links(conn, policy, patients, facts)


def _row_facts(
    conn: Connection, policy: PatientPolicy, pk: int, params: tuple[str, ...]
) -> tuple[set[str], dict[str, PatientFacts]]:
    """The patients whose compartment the resource `pk` is in (through `params`) and their
    facts, found by one statement (more only for patients its first kinds do not relate)."""
    patients, facts = _own_facts(conn, policy, params, {ROW_KEY: pk})
    return patients, _with_links(conn, policy, patients, facts)


def _with_links(
    conn: Connection,
    policy: PatientPolicy,
    patients: Collection[str],
    facts: dict[str, PatientFacts],
) -> dict[str, PatientFacts]:
    unrelated = {p for p in patients if not related(policy, facts.get(p, NO_FACTS))}
    for patient, actor in _first_links(conn, policy, unrelated):
        own = facts.get(patient, NO_FACTS)
        facts[patient] = PatientFacts(own.linked | {actor}, own.rules)
    return facts


def _which(patients: Collection[str]) -> tuple[Patients, dict[str, Any]]:
    """Which statements read `patients`' facts, and their values."""
    if len(patients) == 1:
        (patient,) = patients
        return "one", {PATIENT: patient}
    return "listed", {PATIENTS: json.dumps(sorted(patients))}


def _own_facts(
    conn: Connection, policy: PatientPolicy, which: Patients, values: dict[str, Any]
) -> tuple[set[str], dict[str, PatientFacts]]:
    """(the row's patients, when `which` names a row's; the patients' facts)."""
    statement = patient_facts_statement(policy.relationships, which)
    with driver_rows(conn, statement, {**values, POLICY_AT: policy.at}) as rows:
        return _parsed(rows)


def _parsed(rows: Iterable[Sequence[Any]]) -> tuple[set[str], dict[str, PatientFacts]]:
    """Fact rows (`FACT_COLUMNS` first, rules in deciding order) as (the row's patients, the
    patients' facts)."""
    linked: dict[str, set[tuple[str | None, str | None]]] = {}
    rules: dict[str, list[ConsentRule]] = {}
    of_row: set[str] = set()
    for kind, patient, effect, actor_type, actor_id, purpose, class_type, *_ in rows:
        if kind == RULE:
            rule = ConsentRule(effect, actor_type, actor_id, purpose, class_type)
            rules.setdefault(patient, []).append(rule)
        elif kind == LINK:
            linked.setdefault(patient, set()).add((actor_type, actor_id))
        else:
            of_row.add(patient)
    return of_row, _by_patient(linked, rules)


def _by_patient(
    linked: dict[str, set[tuple[str | None, str | None]]], rules: dict[str, list[ConsentRule]]
) -> dict[str, PatientFacts]:
    """Each patient's facts from their linked actors and their rules in deciding order."""
    return {
        p: PatientFacts(frozenset(linked.get(p, ())), tuple(rules.get(p, ())))
        for p in linked.keys() | rules.keys()
    }


def read_decided(
    conn: Connection, policy: PatientPolicy, res_type: str, res_id: str
) -> tuple[StoredResource | None, bool] | None:
    """A read under `policy` alone: the current row of `res_type`/`res_id` and whether the
    policy lets its user see it, found with the facts deciding it in one statement
    (policy_facts_sql.read_statement) on the DB-API cursor (driver_select.py). None when a
    read needs no facts (an overridden policy, a type outside the patient compartment): the
    caller reads the row as usual."""
    statement = _read_statement(policy, res_type)
    if statement is None:
        return None
    known = visible_set(conn, policy, res_type)
    if known is not None:
        decided = _read_in_set(conn, policy, res_type, res_id, known)
        if decided is not None:
            return decided
    row = driver_row(conn, statement, {RES_ID: res_id, POLICY_AT: policy.at})
    if row is None:
        return None, False
    found = StoredResource(*row[:_RESOURCE_COLUMNS])
    if found.deleted:  # only an unrestricted caller sees that it was deleted
        return found, False
    rules, links, *of_row = row[_RESOURCE_COLUMNS:]
    patients = {res_id} if res_type == "Patient" else {p for (p,) in of_row[0]}
    return found, _read_visible(conn, policy, res_type, patients, rules, links)


_RESOURCE_COLUMNS = len(resource.c)  # a read statement's row: the resource's columns first


def _read_in_set(
    conn: Connection, policy: PatientPolicy, res_type: str, res_id: str, known: VisibleSet
) -> tuple[StoredResource | None, bool] | None:
    """A read decided by a set of `policy`'s visible patients (visible_patients.py): the row,
    the version of the access data its statement saw and its patients, in one statement
    without facts. Visible when one of its patients is in the set and the version is the
    set's; None when that does not decide it (another version: the set is stale; no patient
    in the set: denied, or decided by its facts), and the caller reads the facts."""
    params = None if res_type == "Patient" else compartment_index_params()[res_type]
    row = driver_row(conn, row_statement(res_type, params), {RES_ID: res_id})
    if row is None:
        return None, False
    found = StoredResource(*row[:_RESOURCE_COLUMNS])
    if found.deleted:  # only an unrestricted caller sees that it was deleted
        return found, False
    version = row[_RESOURCE_COLUMNS]
    if version != known.version:
        saw_version(conn, policy, res_type, known, version)
        return None
    if res_type in policy.hidden_types:
        return found, False
    patients = {res_id} if params is None else {p for (p,) in row[_RESOURCE_COLUMNS + 1]}
    return (found, True) if not known.patients.isdisjoint(patients) else None


def _read_statement(policy: PatientPolicy, res_type: str) -> Select[Any] | None:
    if policy.override:
        return None
    if res_type == "Patient":
        return read_statement(policy.relationships, res_type, None)
    params = compartment_index_params().get(res_type)
    return None if params is None else read_statement(policy.relationships, res_type, params)


def _read_visible(
    conn: Connection,
    policy: PatientPolicy,
    res_type: str,
    patients: set[str],
    rules: list[list[Any]],
    links: list[list[Any]],
) -> bool:
    """Whether `policy` lets its user see a `res_type` resource whose compartment is that of
    `patients` (a Patient: itself), found by `read_statement` with their Consent `rules` and
    summary `links`: what `visible_rows` decides for it (one of the patients allows the type),
    without reading the facts again (more only for patients the summarized kinds do not
    relate). Without Consent rules (most patients) the deployment's default decides for a
    related patient, so the links alone answer unless none relates the user."""
    if res_type in policy.hidden_types:
        return False
    if not rules and not policy.default_permit:
        return False
    actors = policy.actors
    linked = any((t, i) in actors for _, t, i in links)
    if linked and not rules:
        return True
    if len(patients) == 1 and (  # every row is that patient's: no grouping, no sorting
        linked or any(rule[1] == PERMIT and (rule[2], rule[3]) in actors for rule in rules)
    ):  # related; else other kinds of link may relate them (below)
        return rules_permit(policy, rules, res_type)
    by_patient = _with_links(conn, policy, patients, _read_facts(_in_deciding_order(rules), links))
    return any(allowed_types(policy, by_patient.get(p, NO_FACTS), (res_type,)) for p in patients)


def rules_permit(policy: PatientPolicy, rules: list[list[Any]], res_type: str) -> bool:
    """`consented` for one patient's `rules` (`READ_RULE_COLUMNS`, in no order): the effect of
    the rule that comes first in deciding order among those that apply to the user's actors,
    purpose and `res_type`, found in one pass as the applicable rule with the largest
    `_deciding_key` (no sort: a patient's rules are few, but a read with rules decides on
    every request); else the default. Rules with equal keys have the same effect (it is part
    of the key), so which of them is found does not matter."""
    best: tuple[str, int, bool] | None = None
    for rule in rules:
        if (
            (rule[3] is None or (rule[2], rule[3]) in policy.actors)
            and rule[4] in (None, policy.purpose)
            and rule[5] in (None, res_type)
        ):
            key = _deciding_key(rule)
            if best is None or key > best:
                best = key
    return policy.default_permit if best is None else not best[2]


def _read_facts(rules: list[list[Any]], links: list[list[Any]]) -> dict[str, PatientFacts]:
    """Each patient's facts from a read's `rules` (`READ_RULE_COLUMNS`, in deciding order)
    and `links` (patient, actor type, actor id)."""
    linked: dict[str, set[tuple[str | None, str | None]]] = {}
    ruled: dict[str, list[ConsentRule]] = {}
    for patient, actor_type, actor_id in links:
        linked.setdefault(patient, set()).add((actor_type, actor_id))
    for rule in rules:
        ruled.setdefault(rule[0], []).append(ConsentRule._make(rule[1:6]))
    return _by_patient(linked, ruled)


def _in_deciding_order(rules: list[list[Any]]) -> list[list[Any]]:
    """`rules` (`READ_RULE_COLUMNS`) in the order of `patient_facts_statement`: most recently
    recorded first (datetimes as one database writes them as text, so they sort as text),
    deepest provision first, deny before permit: one sort in reverse on `_deciding_key`
    (Python's sort stays stable in reverse). Fewer than two rules are returned as they are."""
    if len(rules) < 2:
        return rules
    return sorted(rules, key=_deciding_key, reverse=True)


def _deciding_key(rule: list[Any]) -> tuple[str, int, bool]:
    """Larger first: the later `recorded`, the deeper provision, deny (`True`) over permit."""
    return rule[6] or "", rule[7] or 0, rule[1] != PERMIT


def _first_links(
    conn: Connection, policy: PatientPolicy, unrelated: set[str]
) -> list[tuple[str, tuple[str, str]]]:
    """For each of the `unrelated` patients it finds, the first of the user's actors that a
    resource referencing them links them to, kind of resource by kind, until none is left."""
    found: list[tuple[str, tuple[str, str]]] = []
    if not unrelated:  # the usual case: not even the statements are looked up
        return found
    left = set(unrelated)
    for kind in range(len(patient_links_statements(policy.relationships))):
        if not left:
            break
        which, values = _which(left)
        statement = patient_links_statements(policy.relationships, which)[kind]
        with driver_rows(conn, statement, values) as rows:
            for patient, actor_type, actor_id in rows:
                if patient in left and (actor_type, actor_id) in policy.actors:
                    found.append((patient, (actor_type, actor_id)))
                    left.discard(patient)
    return found


def _compartment_patients(
    conn: Connection,
    keys: list[int],
    types: dict[int, str],
    members: dict[str, tuple[str, ...]],
) -> dict[int, set[str]]:
    """The patients whose compartment each resource of `keys` is in (through a parameter the
    compartment definition lists for its type)."""
    if not keys:
        return {}
    patients_of: dict[int, set[str]] = {}
    values = {ROW_KEYS: json.dumps(sorted(keys))}
    with driver_rows(conn, compartment_links_statement(), values) as rows:
        for pk, param, patient in rows:
            if patient is not None and param in members[types[pk]]:
                patients_of.setdefault(pk, set()).add(patient)
    return patients_of
