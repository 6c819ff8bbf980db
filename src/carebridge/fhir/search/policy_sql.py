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
(consent_rules.py); on a tie, deny wins. One lookup in the patient's summary rows
(search_access, access_links.py, ADR 0015) says whether the kinds of link that are few per
patient relate them to the user and whether they have Consent rules: a related patient without
rules (most patients) is decided by it and the default alone.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    and_,
    bindparam,
    case,
    exists,
    false,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    true,
    union,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import CompoundSelect, Select
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.sqltypes import NullType
from sqlalchemy.sql.visitors import InternalTraversal, iterate

from carebridge.fhir.access_version import in_known_set
from carebridge.fhir.guard import KnownVisible, PatientPolicy
from carebridge.fhir.search.access_links import RULES_MARKER, SUMMARIZED
from carebridge.fhir.search.derived import compartment_index_params
from carebridge.fhir.search.inline import inline, inline_all
from carebridge.fhir.search.json_list import InJsonList, InJsonListsByKind
from carebridge.fhir.search.policy_decision import link_sources
from carebridge.fhir.search.policy_facts_sql import of_kinds
from carebridge.fhir.tables import resource, search_access, search_consent, search_reference

_PERMIT = "permit"


def policy_condition(
    policy: PatientPolicy,
    types: Sequence[str] = (),
    row: Any = resource,
    known: KnownVisible | None = None,
) -> ColumnElement[bool]:
    """The rows of `row` (the `resource` table or an alias of it) of `types` (none: any type)
    that `policy` lets its user see. Conditions on `resource` itself are built once per policy
    and types (a user's requests within a minute share one policy) and reused. With `known`
    (ADR 0017) and `types` its type alone, a patient in that set of the policy's
    visible patients is decided by it, the others per row."""
    if known is not None and tuple(types) != (known.res_type,):
        known = None
    if row is resource:
        return _on_resource(policy, tuple(types), known)
    return _build(policy, types, row, known)


@lru_cache(maxsize=1024)
def _on_resource(
    policy: PatientPolicy, types: tuple[str, ...], known: KnownVisible | None
) -> ColumnElement[bool]:
    shape = (
        policy.relationships,
        policy.override,
        policy.hidden_types,
        _actor_kinds(policy),  # SQLite checks the actors kind by kind (`_is_actor`)
        policy.default_permit,
        types,
        known is not None,
    )
    return KeyedCondition(shape, _build(policy, types, resource, known))


class KeyedCondition(ColumnElement[bool]):
    """A condition whose SQLAlchemy cache key is its `shape` and its bound parameters, not its
    whole tree.

    SQLAlchemy keys every statement it executes by walking its expression, to find the compiled
    form in its cache: for a policy condition (a few hundred elements) that walk cost about
    0.35 ms per statement, more than the database's work on a small search. The SQL text of a
    policy condition is a function of its `shape` (the relationships, override, hidden types,
    the types of its actors, the default, the types searched); the rest (the actors,
    purpose, time) travels in bound parameters, the same ones in the same order for every condition
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


def _build(
    policy: PatientPolicy, types: Sequence[str], row: Any, known: KnownVisible | None = None
) -> ColumnElement[bool]:
    members = compartment_index_params()
    wanted = [t for t in (types or sorted(members)) if t in members and t != "Patient"]
    parts: list[ColumnElement[bool]] = []
    if not types or "Patient" in types:
        parts.append(
            and_(
                row.c.res_type == "Patient",
                _allowed(policy, row.c.res_id, literal("Patient"), known),
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
                _allowed(policy, ref.c.target_id, row.c.res_type, known),
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
    policy: PatientPolicy,
    patient: ColumnElement[str],
    res_type: ColumnElement[str],
    known: KnownVisible | None = None,
) -> ColumnElement[bool]:
    """Decided by what the patient's summary rows say (`_summary`): linked without Consent
    rules (most patients of a user), the default decides; linked with rules, the deciding
    rule; rules without a summary link, a named permit or another kind of link, then the
    deciding rule; neither, another kind of link and the default. A simple CASE on one lookup:
    the database evaluates the lookup once, then only the branch it selects, and each branch
    orders its lookups from the cheapest (a nested CASE, since inside a CASE result SQLite
    evaluates both sides of an AND or OR).

    The two branches that end with another kind of link leave the CASE undecided (NULL) and
    one `COALESCE` asks for those links: written once, PostgreSQL plans them once (planning the
    Encounter subqueries twice was 0.9 of the 2.0 ms PostgreSQL spent planning a name search
    under a clinician's policy on every execution). Both databases evaluate `COALESCE`'s
    arguments only as far as the first that is not NULL.

    With `known` (a set for the type of the rows decided), a patient in that set is allowed
    without the rest (visible_patients.py builds the set with this condition, without
    `known`)."""
    if policy.override:
        return true()
    consented = _consented(policy, patient, res_type)
    ruled_unlinked = case(
        (~consented, false()),
        (_named_permit(policy, patient), true()),
        else_=null(),
    )
    default = true() if policy.default_permit else false()
    decided = case(
        {_LINKED: default, _LINKED | _RULED: consented, _RULED: ruled_unlinked},
        value=_summary(policy, patient),
        else_=null() if policy.default_permit else false(),
    )
    allowed = func.coalesce(decided, _linked_by_others(policy, patient), type_=Boolean())
    return allowed if known is None else or_(in_known_set(known, patient), allowed)


_LINKED, _RULED = 1, 2  # the flags `_summary` adds up


def _summary(policy: PatientPolicy, patient: ColumnElement[str]) -> ColumnElement[int]:
    """One lookup in the patient's summary rows (search_access, access_links.py): `_LINKED`
    when a row links them through a relationship of the policy's kinds to one of the actors,
    plus `_RULED` when a rules marker says they have Consent rules (in force or not: without
    any, no rule can decide); NULL when neither."""
    link = search_access.alias("access_summary")
    marker = link.c.res_type == inline(RULES_MARKER[0])
    rows = and_(marker, link.c.param == inline(RULES_MARKER[1]))
    summarized = [r for r in policy.relationships if r in SUMMARIZED]
    if summarized:
        rows = or_(
            rows,
            and_(of_kinds(link, summarized), _is_actor(policy, link.c.actor_type, link.c.actor_id)),
        )
    ruled = func.max(case((marker, literal_column(str(_RULED))), else_=literal_column("0")))
    linked = func.max(case((marker, literal_column("0")), else_=literal_column(str(_LINKED))))
    return (
        select(ruled + linked)
        .where(link.c.patient_id == patient, rows)
        .correlate_except(link)
        .scalar_subquery()
    )


def _linked_by_others(policy: PatientPolicy, patient: ColumnElement[str]) -> ColumnElement[bool]:
    """A relationship resource of a kind not summarized per patient (Encounter) links the
    patient to one of the actors: one EXISTS per kind, in the order of the policy's
    relationships, so the database stops at the first that holds."""
    others = [r for r in policy.relationships if r not in SUMMARIZED]
    checks = [
        _linked_by(res_type, patient_param, actor_params, policy, patient)
        for (res_type, patient_param), actor_params in link_sources(others).items()
    ]
    return or_(*checks) if checks else false()


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
    list, so the statement's size does not grow with a user's CareTeams and Organizations.

    Every check of a condition binds the same parameter (`ACTORS`), without a type: PostgreSQL
    then takes it as the JSONB the list is cast to and reads it once, when it is bound. A
    parameter typed text (`::VARCHAR`) is cast to JSONB where it is used, and PostgreSQL, which
    plans a search under a policy on every execution, folded each of those casts while planning:
    four readings of a clinician's 203 actors, 0.45 of its 1.5 ms of planning a name search."""
    if not policy.actors:
        return false()
    untyped = bindparam(ACTORS, _actor_list(policy), type_=NullType())
    joined = InJsonList(type_column + "/" + id_column, untyped)
    by_kind = [
        (kind, bindparam(f"{ACTORS}_{n}", ids, type_=NullType()))
        for n, (kind, ids) in enumerate(_actors_by_kind(policy))
    ]
    return InJsonListsByKind(type_column, id_column, joined, by_kind)


ACTORS = "policy_actors"  # the bound JSON list of a policy's actors (and `_<n>`: of one kind)


@lru_cache(maxsize=1024)
def _actor_list(policy: PatientPolicy) -> str:
    return json.dumps(sorted(f"{t}/{i}" for t, i in policy.actors))


@lru_cache(maxsize=1024)
def _actors_by_kind(policy: PatientPolicy) -> tuple[tuple[str, str], ...]:
    """(type, JSON list of the ids of that type) for each type of the policy's actors, sorted."""
    ids: dict[str, list[str]] = {}
    for actor_type, actor_id in policy.actors:
        ids.setdefault(actor_type, []).append(actor_id)
    return tuple((t, json.dumps(sorted(ids[t]))) for t in sorted(ids))


def _actor_kinds(policy: PatientPolicy) -> tuple[str, ...]:
    return tuple(kind for kind, _ in _actors_by_kind(policy))


# -- a set of visible patients (visible_patients.py, ADR 0017) ---------------------------------
def set_candidates(policy: PatientPolicy) -> Select[Any] | CompoundSelect[Any] | None:
    """The patients a set of `policy`'s visible patients is built from: those the summary rows
    link to one of the actors through one of the policy's summarized kinds, and those a rule
    of theirs permits one of the actors by name. One range of `ix_search_access_actor` per
    actor type. Patients related only through other kinds (Encounter) are left out: they are
    decided per row. None when no patient can be a candidate (no actors)."""
    if policy.override or not policy.actors:
        return None
    link = search_access.alias("set_link")
    rule = search_consent.alias("set_rule")
    summarized = [r for r in policy.relationships if r in SUMMARIZED]
    parts: list[Select[Any]] = []
    for kind, ids in _actors_by_kind(policy):
        listed = json.loads(ids)
        if summarized:
            parts.append(
                select(link.c.patient_id).where(
                    link.c.actor_type == kind,
                    link.c.actor_id.in_(listed),
                    of_kinds(link, summarized),
                )
            )
        parts.append(
            select(rule.c.patient_id).where(
                rule.c.res_type == "Consent",
                rule.c.param == "rule",
                rule.c.effect == _PERMIT,
                rule.c.actor_type == kind,
                rule.c.actor_id.in_(listed),
            )
        )
    return union(*parts) if len(parts) > 1 else parts[0]


def allowed_of_type(
    policy: PatientPolicy, patient: ColumnElement[str], res_type: str
) -> ColumnElement[bool]:
    """`policy` lets its user see `patient`'s data of `res_type`: the condition every search
    under the policy decides its rows of that type with."""
    return _allowed(policy, patient, literal(res_type))
