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

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, func, literal, or_, select, true

from carebridge.fhir.guard import PatientPolicy, Relationship
from carebridge.fhir.search.parameters import patient_compartment
from carebridge.fhir.tables import resource, search_consent, search_reference

_PERMIT = "permit"


def policy_condition(
    policy: PatientPolicy, types: Sequence[str] = (), row: Any = resource
) -> ColumnElement[bool]:
    """The rows of `row` (the `resource` table or an alias of it) of `types` (none: any type)
    that `policy` lets its user see."""
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


def _allowed(
    policy: PatientPolicy, patient: ColumnElement[str], res_type: ColumnElement[str]
) -> ColumnElement[bool]:
    if policy.override:
        return true()
    return and_(_related(policy, patient), _consented(policy, patient, res_type))


def _related(policy: PatientPolicy, patient: ColumnElement[str]) -> ColumnElement[bool]:
    links = [_linked_by(rel, policy, patient) for rel in policy.relationships]
    rule = search_consent.alias("named_rule")
    named = exists().where(
        rule.c.res_type == "Consent",
        rule.c.param == "rule",
        rule.c.patient_id == patient,
        rule.c.effect == _PERMIT,
        _is_actor(policy, rule.c.actor_type, rule.c.actor_id),
        rule.c.start <= policy.at,
        rule.c.end >= policy.at,
    )
    return or_(*links, named)


def _linked_by(
    rel: Relationship, policy: PatientPolicy, patient: ColumnElement[str]
) -> ColumnElement[bool]:
    actor = search_reference.alias(f"actor_{rel.res_type}_{rel.actor_param}".replace("-", "_"))
    if rel.patient_param is None:  # the Patient resource names the actor itself
        own = resource.alias("related_patient")
        return exists().where(
            own.c.res_type == "Patient",
            own.c.res_id == patient,
            actor.c.res_pk == own.c.pk,
            actor.c.param == rel.actor_param,
            _is_actor(policy, actor.c.target_type, actor.c.target_id),
        )
    subject = search_reference.alias(f"subject_{rel.res_type}_{rel.patient_param}")
    return exists().where(
        subject.c.res_type == rel.res_type,
        subject.c.param == rel.patient_param,
        subject.c.target_type == "Patient",
        subject.c.target_id == patient,
        actor.c.res_pk == subject.c.res_pk,
        actor.c.param == rel.actor_param,
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
    by_type: dict[str, list[str]] = {}
    for rtype, rid in sorted(policy.actors):
        by_type.setdefault(rtype, []).append(rid)
    if not by_type:
        return false()
    return or_(*(and_(type_column == t, id_column.in_(ids)) for t, ids in by_type.items()))
