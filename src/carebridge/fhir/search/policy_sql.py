"""A user's `PatientPolicy` as one SQL condition on `resource` (ADR 0010).

Decided by the database, per candidate row, with correlated subqueries that use the index
tables' lookup indexes, so totals, paging, includes and chains see exactly what the caller may
see. Where the rows are few, the store decides the same rules per patient instead
(fhir/patient_policy.py, ADR 0012); both are checked against one evaluator in the tests.

    visible(row) =  row is not patient data (type outside the Patient compartment)
                 or row is in the compartment of a patient P with allowed(P, row type)
    allowed(P, T) = override
                 or related(P) and consented(P, T)
    related(P)    = a relationship resource links P to one of the caller's actors
                 or one of P's Consent rules permits one of the actors by name
    consented(P, T) = effect of P's deciding Consent rule for (actors, purpose, T, now),
                      else the deployment default (opt-out: permit, opt-in: deny)

The deciding rule is the deepest matching provision of the most recent Consent
(consent_rules.py); on a tie, deny wins. A patient without Consent rules (most patients) is
decided by `linked(P) and default`; the links of the kinds that are few per patient are one
lookup in the patient's summary rows (search_access, access_links.py, ADR 0015).
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    String,
    and_,
    bindparam,
    exists,
    false,
    func,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.visitors import InternalTraversal, iterate

from carebridge.fhir.guard import PatientPolicy, Relationship
from carebridge.fhir.search.access_links import SUMMARIZED
from carebridge.fhir.search.derived import compartment_index_params
from carebridge.fhir.search.inline import inline, inline_all
from carebridge.fhir.search.json_list import InJsonList
from carebridge.fhir.search.policy_decision import link_sources
from carebridge.fhir.search.policy_facts_sql import of_kinds
from carebridge.fhir.tables import resource, search_access, search_consent, search_reference

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
    shape = (
        policy.relationships,
        policy.override,
        policy.hidden_types,
        bool(policy.actors),
        types,
    )
    return KeyedCondition(shape, _build(policy, types, resource))


class KeyedCondition(ColumnElement[bool]):
    """A condition whose SQLAlchemy cache key is its `shape` and its bound parameters, not its
    whole tree.

    SQLAlchemy keys every statement it executes by walking its expression, to find the compiled
    form in its cache: for a policy condition (a few hundred elements) that walk cost about
    0.35 ms per statement, more than the database's work on a small search. The SQL text of a
    policy condition is a function of its `shape` (the relationships, override, hidden types,
    whether there are actors, the types searched); the rest (the actors, purpose, time,
    default) travels in bound parameters, the same ones in the same order for every condition
    of a shape. The key is the shape plus those parameters, which SQLAlchemy then takes the
    values of for each execution: users whose policies share a shape share the compiled
    statement (and PostgreSQL's prepared statement), each with their own values. Only for
    conditions on `resource` itself: a walk that adapts a statement to an alias (sql.py
    `_rebind`) does not look inside."""

    inherit_cache = False
    type = Boolean()
    _is_implicitly_boolean = True
    _traverse_internals = [
        ("shape", InternalTraversal.dp_plain_obj),
        ("binds", InternalTraversal.dp_clauseelement_list),
    ]

    def __init__(self, shape: Hashable, condition: ColumnElement[bool]) -> None:
        self.shape = shape
        self.condition = condition
        self.binds = [e for e in iterate(condition) if isinstance(e, BindParameter)]


@compiles(KeyedCondition)
def _keyed(element: KeyedCondition, compiler: SQLCompiler, **kw: Any) -> str:
    return str(compiler.process(element.condition, **kw))


def _build(policy: PatientPolicy, types: Sequence[str], row: Any) -> ColumnElement[bool]:
    members = compartment_index_params()
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


def _allowed(
    policy: PatientPolicy, patient: ColumnElement[str], res_type: ColumnElement[str]
) -> ColumnElement[bool]:
    """A patient without Consent rules (most) is decided by their links and the default alone;
    only a patient with rules needs the named permits and the deciding rule."""
    if policy.override:
        return true()
    linked = _linked(policy, patient)
    ruled = and_(or_(linked, _named_permit(policy, patient)), _consented(policy, patient, res_type))
    has_rules = _has_rules(patient)
    # Not a CASE: SQLite evaluates both sides of an OR inside a CASE's result, while in a
    # WHERE clause's boolean context it stops at the first that holds.
    if not policy.default_permit:
        return and_(has_rules, ruled)
    return or_(and_(~has_rules, linked), and_(has_rules, ruled))


def _linked(policy: PatientPolicy, patient: ColumnElement[str]) -> ColumnElement[bool]:
    """A relationship resource links the patient to one of the actors: the kinds summarized per
    patient (access_links.py) in one lookup, then each other kind (Encounter) by its own join,
    in the order of the policy's relationships, each an EXISTS so the database stops at the
    first that holds."""
    summarized = [r for r in policy.relationships if r in SUMMARIZED]
    others = [r for r in policy.relationships if r not in SUMMARIZED]
    checks = [_summary_link(summarized, policy, patient)] if summarized else []
    for (res_type, patient_param), actor_params in link_sources(others).items():
        checks.append(_linked_by(res_type, patient_param, actor_params, policy, patient))
    return or_(*checks) if checks else false()


def _summary_link(
    links: list[Relationship], policy: PatientPolicy, patient: ColumnElement[str]
) -> ColumnElement[bool]:
    """One of the patient's summary rows is a link of the policy's kinds to one of the actors."""
    link = search_access.alias("access_link")
    return exists().where(
        link.c.patient_id == patient,
        of_kinds(link, links),
        _is_actor(policy, link.c.actor_type, link.c.actor_id),
    )


def _has_rules(patient: ColumnElement[str]) -> ColumnElement[bool]:
    """The patient has Consent rules (in force or not: without any, no rule can decide)."""
    rule = search_consent.alias("any_rule")
    return exists().where(
        rule.c.res_type == inline("Consent"),
        rule.c.param == inline("rule"),
        rule.c.patient_id == patient,
    )


def _named_permit(policy: PatientPolicy, patient: ColumnElement[str]) -> ColumnElement[bool]:
    """One of the patient's rules in force permits one of the actors by name."""
    rule = search_consent.alias("named_rule")
    return exists().where(
        rule.c.res_type == "Consent",
        rule.c.param == "rule",
        rule.c.patient_id == patient,
        rule.c.effect == _PERMIT,
        _is_actor(policy, rule.c.actor_type, rule.c.actor_id),
        rule.c.start <= policy.at,
        rule.c.end >= policy.at,
    )


def _linked_by(
    res_type: str,
    patient_param: str,
    actor_params: set[str],
    policy: PatientPolicy,
    patient: ColumnElement[str],
) -> ColumnElement[bool]:
    """A `res_type` resource (CareTeam, Coverage, ...) references the patient through
    `patient_param` and one of the actors through one of `actor_params`."""
    subject = search_reference.alias("link_subject")
    actor = search_reference.alias("link_actor")
    return exists().where(
        subject.c.res_type == inline(res_type),
        subject.c.param == inline(patient_param),
        subject.c.target_id == patient,
        subject.c.target_type == inline("Patient"),
        actor.c.res_pk == subject.c.res_pk,
        actor.c.param.in_(inline_all(actor_params)),
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
