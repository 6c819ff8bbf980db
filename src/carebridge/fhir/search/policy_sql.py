"""A user's `PatientPolicy` as one SQL condition on `resource` (ADR 0010).

Everything is decided by the database, per candidate row, with correlated subqueries that use
the index tables' lookup indexes: never by filtering rows in Python, so totals, paging, includes
and chains see exactly what the caller may see.

    visible(row) =  row is not patient data (type outside the Patient compartment)
                 or row is in the compartment of a patient P with allowed(P, row type)
    allowed(P, T) = override
                 or related(P) and consented(P, T)
    related(P)    = a relationship resource links P to one of the caller's actors
                 or one of P's Consent rules permits one of the actors by name
    consented(P, T) = effect of P's deciding Consent rule for (actors, purpose, T, now),
                      else the deployment default (opt-out: permit, opt-in: deny)

The deciding rule is the deepest matching provision of the most recent Consent
(consent_rules.py); on a tie, deny wins.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Executable,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    cast,
    exists,
    false,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    true,
    union_all,
)

from carebridge.fhir.guard import PatientPolicy, Relationship
from carebridge.fhir.search.inline import inline, inline_all
from carebridge.fhir.search.json_list import InJsonList
from carebridge.fhir.search.parameters import patient_compartment
from carebridge.fhir.tables import resource, search_consent, search_reference

_PERMIT = "permit"


def policy_condition(
    policy: PatientPolicy, types: Sequence[str] = (), row: Any = resource
) -> ColumnElement[bool]:
    """The rows of `row` (the `resource` table or an alias of it) of `types` (none: any type)
    that `policy` lets its user see. Conditions on `resource` itself are built once per policy
    and types (a user's requests within a minute share one policy) and reused."""
    if row is resource:
        return _on_resource(policy, tuple(types))
    return _build(policy, types, row)


@lru_cache(maxsize=1024)
def _on_resource(policy: PatientPolicy, types: tuple[str, ...]) -> ColumnElement[bool]:
    return _build(policy, types, resource)


def _build(policy: PatientPolicy, types: Sequence[str], row: Any) -> ColumnElement[bool]:
    members = patient_compartment()
    wanted = [t for t in (types or sorted(members)) if t in members and t != "Patient"]
    parts: list[ColumnElement[bool]] = []
    if not types or "Patient" in types:
        parts.append(
            and_(
                row.c.res_type == "Patient",
                _allowed(policy, row.c.res_id, literal("Patient")),
            )
        )
    if wanted:
        ref = search_reference.alias("policy_ref")
        by_type = [and_(ref.c.res_type == t, ref.c.param.in_(sorted(members[t]))) for t in wanted]
        parts.append(
            exists().where(
                ref.c.res_pk == row.c.pk,
                ref.c.target_type == "Patient",
                or_(*by_type),
                _allowed(policy, ref.c.target_id, row.c.res_type),
            )
        )
    if not types:
        parts.append(row.c.res_type.not_in(sorted(members)))
    elif outside := [t for t in types if t not in members]:
        parts.append(row.c.res_type.in_(outside))
    visible = or_(*parts) if parts else false()
    if policy.hidden_types:
        return and_(row.c.res_type.not_in(sorted(policy.hidden_types)), visible)
    return visible


PINNED_PATIENT = "pinned_patient"
POLICY_AT = "policy_at"
RULE, LINK = 0, 1  # the kinds of row of `patient_facts_statement`


@lru_cache(maxsize=64)
def patient_facts_statement(relationships: tuple[Relationship, ...]) -> Executable:
    """The patient's own facts for any policy with these `relationships`, for the patient bound
    as `pinned_patient` at the time bound as `policy_at` (policy_decision.py decides them):

    - `(RULE, effect, actor_type, actor_id, purpose, class_type)` for each of the patient's
      Consent rules in force, in deciding order (most recent Consent, deepest provision, deny
      first: the order `_consented` takes the first of);
    - then `(LINK, None, type, id, None, None)` for each actor the Patient resource itself
      names (what `_linked_as_patient` matches against the actor set, here without it).

    A few index lookups, the same statement for every user with these relationships, its
    constants in the text (inline.py)."""
    patient = bindparam(PINNED_PATIENT, type_=String())
    parts = [_rules_in_force(patient)]
    own = [r for r in relationships if r.patient_param is None]
    if own:
        parts.append(_own_link_actors(own, patient))
    facts = union_all(*parts).subquery("facts")
    return select(*(facts.c[k] for k in _FACT_COLUMNS)).order_by(
        facts.c.kind, facts.c.recorded.desc(), facts.c.depth.desc(), facts.c.effect.asc()
    )


@lru_cache(maxsize=64)
def patient_links_statement(relationships: tuple[Relationship, ...]) -> Executable | None:
    """`(type, id)` of each actor that a resource referencing the patient bound as
    `pinned_patient` links to them (what `_linked_by` matches against the actor set), source
    type by source type in the order of `relationships`, so that a reader stopping at the
    first of the user's actors skips the rest; None without such relationships."""
    patient = bindparam(PINNED_PATIENT, type_=String())
    by_source: dict[tuple[str, str], set[str]] = {}
    for r in relationships:
        if r.patient_param is not None:
            by_source.setdefault((r.res_type, r.patient_param), set()).add(r.actor_param)
    parts = [_link_actors(*source, params, patient) for source, params in by_source.items()]
    if len(parts) < 2:
        return parts[0] if parts else None
    return union_all(*parts)


_FACT_COLUMNS = ("kind", "effect", "actor_type", "actor_id", "purpose", "class_type")


def _rules_in_force(patient: ColumnElement[str]) -> Select[Any]:
    rule = search_consent
    at = bindparam(POLICY_AT, type_=DateTime())
    return select(
        literal_column(str(RULE)).label("kind"),
        rule.c.effect,
        rule.c.actor_type,
        rule.c.actor_id,
        rule.c.purpose,
        rule.c.class_type,
        rule.c.recorded,
        rule.c.depth,
    ).where(
        rule.c.res_type == inline("Consent"),
        rule.c.param == inline("rule"),
        rule.c.patient_id == patient,
        rule.c.start <= at,
        rule.c.end >= at,
    )


def _as_link(actor: Any) -> tuple[ColumnElement[Any], ...]:
    """A link row in the columns of a rule row (typed NULLs: PostgreSQL unions need types)."""
    text = cast(null(), String())
    return (
        literal_column(str(LINK)),
        text,
        actor.c.target_type,
        actor.c.target_id,
        text,
        text,
        cast(null(), DateTime()),
        cast(null(), Integer()),
    )


def _own_link_actors(links: list[Relationship], patient: ColumnElement[str]) -> Select[Any]:
    """Actors the Patient resource itself names (`_linked_as_patient`)."""
    own = resource.alias("related_patient")
    actor = search_reference.alias("patient_actor")
    return (
        select(*_as_link(actor))
        .where(
            own.c.res_type == inline("Patient"),
            own.c.res_id == patient,
            actor.c.res_pk == own.c.pk,
            actor.c.param.in_(inline_all([r.actor_param for r in links])),
        )
        .distinct()
    )


def _link_actors(
    res_type: str, patient_param: str, actor_params: set[str], patient: ColumnElement[str]
) -> Select[Any]:
    """Actors of the `res_type` resources that reference the patient through `patient_param`
    (`_linked_by`): one index range for the sources, one lookup per source for its actors."""
    subject = search_reference.alias("link_subject")
    actor = search_reference.alias("link_actor")
    return (
        select(actor.c.target_type, actor.c.target_id)
        .where(
            subject.c.res_type == inline(res_type),
            subject.c.param == inline(patient_param),
            subject.c.target_id == patient,
            subject.c.target_type == inline("Patient"),
            actor.c.res_pk == subject.c.res_pk,
            actor.c.param.in_(inline_all(actor_params)),
        )
        .distinct()
    )


def _kinds(links: list[Relationship], subject: Any, actor: Any) -> list[ColumnElement[bool]]:
    return [
        and_(
            subject.c.res_type == r.res_type,
            subject.c.param == r.patient_param,
            actor.c.param == r.actor_param,
        )
        for r in links
    ]


def _allowed(
    policy: PatientPolicy, patient: ColumnElement[str], res_type: ColumnElement[str]
) -> ColumnElement[bool]:
    if policy.override:
        return true()
    return and_(_related(policy, patient), _consented(policy, patient, res_type))


def _related(policy: PatientPolicy, patient: ColumnElement[str]) -> ColumnElement[bool]:
    own_links = [r for r in policy.relationships if r.patient_param is None]
    other_links = [r for r in policy.relationships if r.patient_param is not None]
    checks = []
    if own_links:
        checks.append(_linked_as_patient(own_links, policy, patient))
    if other_links:
        checks.append(_linked_by(other_links, policy, patient))
    rule = search_consent.alias("named_rule")
    checks.append(
        exists().where(
            rule.c.res_type == "Consent",
            rule.c.param == "rule",
            rule.c.patient_id == patient,
            rule.c.effect == _PERMIT,
            _is_actor(policy, rule.c.actor_type, rule.c.actor_id),
            rule.c.start <= policy.at,
            rule.c.end >= policy.at,
        )
    )
    return or_(*checks)


def _linked_as_patient(
    links: list[Relationship], policy: PatientPolicy, patient: ColumnElement[str]
) -> ColumnElement[bool]:
    """The Patient resource itself names one of the actors (managing organisation, GP)."""
    own = resource.alias("related_patient")
    actor = search_reference.alias("patient_actor")
    return exists().where(
        own.c.res_type == "Patient",
        own.c.res_id == patient,
        actor.c.res_pk == own.c.pk,
        actor.c.param.in_(sorted({r.actor_param for r in links})),
        _is_actor(policy, actor.c.target_type, actor.c.target_id),
    )


def _linked_by(
    links: list[Relationship], policy: PatientPolicy, patient: ColumnElement[str]
) -> ColumnElement[bool]:
    """A resource (CareTeam, Coverage, ...) references the patient and one of the actors."""
    subject = search_reference.alias("link_subject")
    actor = search_reference.alias("link_actor")
    return exists().where(
        subject.c.target_type == "Patient",
        subject.c.target_id == patient,
        subject.c.res_type.in_(sorted({r.res_type for r in links})),
        actor.c.res_pk == subject.c.res_pk,
        or_(*_kinds(links, subject, actor)),
        _is_actor(policy, actor.c.target_type, actor.c.target_id),
    )


def _consented(
    policy: PatientPolicy, patient: ColumnElement[str], res_type: ColumnElement[str]
) -> ColumnElement[bool]:
    rule = search_consent.alias("deciding_rule")
    decision = (
        select(rule.c.effect)
        .where(
            rule.c.res_type == "Consent",
            rule.c.param == "rule",
            rule.c.patient_id == patient,
            or_(rule.c.actor_id.is_(None), _is_actor(policy, rule.c.actor_type, rule.c.actor_id)),
            or_(rule.c.purpose.is_(None), rule.c.purpose == policy.purpose),
            or_(rule.c.class_type.is_(None), rule.c.class_type == res_type),
            rule.c.start <= policy.at,
            rule.c.end >= policy.at,
        )
        .order_by(rule.c.recorded.desc(), rule.c.depth.desc(), rule.c.effect.asc())
        .limit(1)
        .correlate_except(rule)  # the row's patient and type come from the enclosing query
        .scalar_subquery()
    )
    default = _PERMIT if policy.default_permit else "deny"
    return func.coalesce(decision, default) == _PERMIT


def _is_actor(
    policy: PatientPolicy,
    type_column: ColumnElement[str | None],
    id_column: ColumnElement[str | None],
) -> ColumnElement[bool]:
    """`Type/id` of the row is one of the policy's actors: the actors travel as one bound JSON
    list, so the statement's size does not grow with a user's CareTeams and Organizations."""
    if not policy.actors:
        return false()
    keys = json.dumps(sorted(f"{t}/{i}" for t, i in policy.actors))
    return InJsonList(type_column + "/" + id_column, bindparam(None, keys, type_=String()))
