"""A user's `PatientPolicy` decided for one patient in Python, from that patient's few facts (pure).

The same rules as policy_sql.py, which decides them per row in SQL:

    allowed(P, T) = not hidden(T) and (override or related(P) and consented(P, T))
    related(P)    = a relationship resource links P to one of the caller's actors
                 or one of P's Consent rules in force permits one of the actors by name
    consented(P, T) = effect of P's deciding Consent rule for (actors, purpose, T),
                      else the deployment default (opt-out: permit, opt-in: deny)

`PatientFacts` are what the store reads about one patient with one small indexed statement
(`policy_sql.patient_facts_statement`): the actors its relationship resources reference, and its
Consent rules in force at the policy's time, already in deciding order (most recent Consent,
then deepest provision, then deny before permit). Checking a few links against the caller's
actor set here costs O(links), whatever the number of CareTeams the caller takes part in; the
SQL form has to carry the actor set into the statement instead.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from carebridge.fhir.guard import PatientPolicy, Relationship
from carebridge.fhir.search.derived import stored_actor_codes, stored_codes

PERMIT = "permit"


class ConsentRule(NamedTuple):
    """One row of `search_consent` (consent_rules.py); None means "any". A named tuple: a read
    makes one per rule of the patient's, straight from the row."""

    effect: str
    actor_type: str | None
    actor_id: str | None
    purpose: str | None
    class_type: str | None


@dataclass(frozen=True)
class PatientFacts:
    """What decides a policy for one patient.

    `linked`: `(type, id)` of every actor a relationship resource of the policy's kinds links
    to the patient. `rules`: the patient's Consent rules in force, in deciding order."""

    linked: frozenset[tuple[str | None, str | None]]
    rules: tuple[ConsentRule, ...]


NO_FACTS = PatientFacts(frozenset(), ())
Candidate = tuple[int, str, str]  # (pk, type, id) of a resource row


def allowed_types(
    policy: PatientPolicy, facts: PatientFacts, types: Iterable[str]
) -> frozenset[str]:
    """Those of `types` whose resources in the patient's compartment `policy` lets its user see."""
    shown = [t for t in types if t not in policy.hidden_types]
    if policy.override:
        return frozenset(shown)
    if not related(policy, facts):
        return frozenset()
    return frozenset(t for t in shown if consented(policy, facts, t))


def related(policy: PatientPolicy, facts: PatientFacts) -> bool:
    """A relationship resource or a permit that names one of the actors ties the user to the
    patient."""
    if any(actor in policy.actors for actor in facts.linked):
        return True
    return any(
        rule.effect == PERMIT and (rule.actor_type, rule.actor_id) in policy.actors
        for rule in facts.rules
    )


def consented(policy: PatientPolicy, facts: PatientFacts, res_type: str) -> bool:
    """The deciding rule's effect for the user's actors, purpose and `res_type`, else the
    default."""
    for rule in facts.rules:
        if (
            (rule.actor_id is None or (rule.actor_type, rule.actor_id) in policy.actors)
            and rule.purpose in (None, policy.purpose)
            and rule.class_type in (None, res_type)
        ):
            return rule.effect == PERMIT
    return policy.default_permit


def visible_keys(
    policy: PatientPolicy,
    rows: Iterable[Candidate],
    patients_of: Mapping[int, Collection[str]],
    facts: Mapping[str, PatientFacts],
    compartment_types: Collection[str],
) -> set[int]:
    """The keys of those `rows` that `policy` lets its user see, as policy_sql.py's
    `policy_condition` decides each row: a Patient by its own facts, a resource of a
    compartment type when one of `patients_of` its patients allows its type, a resource of
    another type always, a hidden type never. Each (patient, type) is decided once."""
    decided: dict[tuple[str, str], bool] = {}

    def allows(patient: str, res_type: str) -> bool:
        if (patient, res_type) not in decided:
            found = allowed_types(policy, facts.get(patient, NO_FACTS), (res_type,))
            decided[patient, res_type] = bool(found)
        return decided[patient, res_type]

    keys = set()
    for pk, res_type, res_id in rows:
        if res_type in policy.hidden_types:
            continue
        if res_type == "Patient":
            shown = allows(res_id, res_type)
        elif res_type in compartment_types:
            shown = any(allows(p, res_type) for p in patients_of.get(pk, ()))
        else:
            shown = True
        if shown:
            keys.add(pk)
    return keys


def link_sources(relationships: Iterable[Relationship]) -> dict[tuple[str, str], set[str]]:
    """(type, patient parameter) of the resources that link a patient to an actor, in the
    order of `relationships`, each with the parameters that name the actor: the parameters
    whose index rows hold them (search/derived.py: CareTeam `patient` is read as `subject`
    rows referencing a Patient)."""
    by_source: dict[tuple[str, str], set[str]] = {}
    for r in relationships:
        if r.patient_param is None:
            continue
        actors = stored_actor_codes(r.res_type, [r.actor_param])
        for code in stored_codes(r.res_type, [r.patient_param], "Patient"):
            by_source.setdefault((r.res_type, code), set()).update(actors)
    return by_source
