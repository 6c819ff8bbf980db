"""Statements that read the facts deciding a `PatientPolicy` for given patients (pure building).

The per-row form of the policy (policy_sql.py) carries the user's actor set into SQL; these
statements carry none of the user: they read, for a JSON list of patient ids (bound as
`patients`), for one patient (`patient`) or for the patients a resource references (`row_key`),
what policy_decision.py needs to decide in Python. Each is the same for every user
with the same relationships, with its constants in the text (inline.py), so it is compiled
once and, on PostgreSQL, planned once (driver_select.py runs them on the DB-API cursor).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Executable,
    Integer,
    Select,
    String,
    Subquery,
    bindparam,
    cast,
    literal_column,
    null,
    select,
    union_all,
)

from carebridge.fhir.guard import Relationship
from carebridge.fhir.search.access_links import SUMMARIZED
from carebridge.fhir.search.inline import inline, inline_all
from carebridge.fhir.search.json_list import InJsonList, JsonRows
from carebridge.fhir.search.policy_decision import link_sources
from carebridge.fhir.tables import resource, search_access, search_consent, search_reference

PATIENTS = "patients"  # a JSON list of patient ids
PATIENT = "patient"  # one patient id, in the statements for "one" patient
ROW_KEYS = "row_keys"  # a JSON list of resource keys
POLICY_AT = "policy_at"
ROW_KEY = "row_key"  # one resource key, in the statements for the patients of a row
RULE, LINK, COMPARTMENT = 0, 1, 2  # the kinds of row of `patient_facts_statement`

# Whose facts a statement reads: the listed patients (`patients`), one patient (`patient`), or
# the patients a resource's row (`row_key`) references through these compartment parameters.
Patients = Literal["listed", "one"] | tuple[str, ...]
FACT_COLUMNS = ("kind", "patient", "effect", "actor_type", "actor_id", "purpose", "class_type")
READ_FACT_COLUMNS = (*FACT_COLUMNS, "recorded", "depth")  # a read's facts, ordered in Python
RES_ID = "res_id"  # the id of the resource a read statement finds
FACTS = "facts"  # its column of facts


@lru_cache(maxsize=256)
def patient_facts_statement(
    relationships: tuple[Relationship, ...], patients: Patients = "listed"
) -> Executable:
    """The `patients`' own facts, for any policy with these `relationships`, at the time
    bound as `policy_at`, as `FACT_COLUMNS`:

    - `(RULE, patient, effect, actor_type, actor_id, purpose, class_type)` for each Consent
      rule in force, in deciding order (most recent Consent, deepest provision, deny first:
      the order policy_sql.py's `_consented` takes the first of);
    - then `(LINK, patient, None, type, id, None, None)` for each actor the patient's summary
      rows (access_links.py, ADR 0015) link them to through the relationships summarized
      there (the Patient's own references, CareTeams, EpisodeOfCares, Coverages), so a patient
      any of those relates is decided with this one statement;
    - for the patients of a row, first `(COMPARTMENT, patient, None, ...)` for each patient
      whose compartment the row is in, so a read decides with the statement that finds them."""
    facts = _facts(relationships, patients, None)
    return select(*(facts.c[k] for k in FACT_COLUMNS)).order_by(*_deciding_order(facts))


@lru_cache(maxsize=256)
def read_statement(
    relationships: tuple[Relationship, ...], res_type: str, params: tuple[str, ...] | None
) -> Select[Any]:
    """The resource `res_type`/`res_id` (bound as `res_id`) as `select(resource)` returns it,
    with one more column, `facts`: a JSON array of `READ_FACT_COLUMNS` rows, the facts
    `patient_facts_statement` reads for the patients of that row (a Patient: itself; another
    type: those it references through the compartment `params`), in no particular order.

    One statement instead of two for a read under a policy: the facts are a correlated
    subquery of the row found, which costs the database two index lookups more and saves a
    statement (on PostgreSQL a round trip): ADR 0015, amendment 2."""
    row = resource.alias("found")
    patients: Patients = "one" if params is None else params
    facts = _facts(relationships, patients, row).alias("facts")
    columns = [facts.c[k] for k in READ_FACT_COLUMNS]
    listed = select(JsonRows(*columns)).select_from(facts).scalar_subquery()
    return select(*(row.c[c.name] for c in resource.c), listed.label(FACTS)).where(
        row.c.res_type == inline(res_type), row.c.res_id == bindparam(RES_ID, type_=String())
    )


def _facts(relationships: tuple[Relationship, ...], patients: Patients, row: Any) -> Subquery:
    """The union of fact rows; `row`: the outer resource row whose patient (for "one": the
    Patient row itself) or key (for the patients of a row) takes the bound value's place."""
    parts = [_rules_in_force(patients, row)]
    summarized = [r for r in relationships if r in SUMMARIZED]
    if summarized:
        parts.append(_summary_links(summarized, patients, row))
    if isinstance(patients, tuple):
        parts.append(_compartment_rows(patients, row))
    if row is not None:
        parts = [part.correlate(row) for part in parts]
    return union_all(*parts).subquery("facts")


def _deciding_order(facts: Any) -> list[ColumnElement[Any]]:
    return [facts.c.kind, facts.c.recorded.desc(), facts.c.depth.desc(), facts.c.effect.asc()]


@lru_cache(maxsize=64)
def patient_links_statements(
    relationships: tuple[Relationship, ...], patients: Patients = "listed"
) -> tuple[Executable, ...]:
    """Per kind of resource that links a patient to an actor and is not summarized per patient
    (Encounter), in the order of `relationships`: `(patient, type, id)` for each actor such a
    resource referencing one of the listed patients links them to (what `_linked_by` matches
    against the actor set). A reader asks only about the patients `patient_facts_statement`
    left unrelated, so the Encounters of a patient its CareTeam relates are never read."""
    others = [r for r in relationships if r not in SUMMARIZED]
    sources = link_sources(others).items()
    return tuple(_link_actors(*source, actor_params, patients) for source, actor_params in sources)


@lru_cache(maxsize=1)
def compartment_links_statement() -> Executable:
    """`(key, param, patient)` for each reference to a Patient from the listed resource keys
    (bound as `row_keys`): the patients whose compartment each resource may be in."""
    ref = search_reference
    return select(ref.c.res_pk, ref.c.param, ref.c.target_id).where(
        InJsonList(ref.c.res_pk, bindparam(ROW_KEYS, type_=String()), integers=True, seek=True),
        ref.c.target_type == inline("Patient"),
    )


def _listed(column: ColumnElement[str], patients: Patients, row: Any = None) -> ColumnElement[bool]:
    """`column` is one of `patients`. One patient is a plain equality, which SQLite answers
    without building a JSON list (the facts of one patient 76 -> 31 µs on the 1M bench store).
    With `row` (an outer resource row), "one" is that Patient row and a row's patients are
    that row's."""
    if patients == "one":
        return column == (bindparam(PATIENT, type_=String()) if row is None else row.c.res_id)
    if patients == "listed":
        return InJsonList(column, bindparam(PATIENTS, type_=String()), seek=True)
    return column.in_(_row_patients(patients, row))


def _row_patients(params: tuple[str, ...], row: Any = None) -> Select[Any]:
    """The patients the row bound as `row_key` (or the outer `row`) references through
    `params`."""
    ref = search_reference.alias("row_patient")
    key = bindparam(ROW_KEY, type_=Integer()) if row is None else row.c.pk
    found = select(ref.c.target_id).where(
        ref.c.res_pk == key,
        ref.c.target_type == inline("Patient"),
        ref.c.param.in_(inline_all(params)),
    )
    return found if row is None else found.correlate(row)


def _compartment_rows(params: tuple[str, ...], row: Any = None) -> Select[Any]:
    """`(COMPARTMENT, patient, None, ...)` for each patient of the row (`_row_patients`)."""
    found = _row_patients(params, row).subquery("compartment")
    return select(*_fact_columns(COMPARTMENT, found.c.target_id))


def _rules_in_force(patients: Patients, row: Any = None) -> Select[Any]:
    rule = search_consent
    at = bindparam(POLICY_AT, type_=DateTime())
    return select(
        literal_column(str(RULE)).label("kind"),
        rule.c.patient_id.label("patient"),
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
        _listed(rule.c.patient_id, patients, row),
        rule.c.start <= at,
        rule.c.end >= at,
    )


def _summary_links(links: list[Relationship], patients: Patients, row: Any = None) -> Select[Any]:
    """Actors the summary rows of these kinds link the patients to (`_summary_link`)."""
    link = search_access.alias("access_link")
    columns = _fact_columns(LINK, link.c.patient_id, link.c.actor_type, link.c.actor_id)
    where = _listed(link.c.patient_id, patients, row), of_kinds(link, links)
    return select(*columns).where(*where)


def of_kinds(link: Any, links: Sequence[Relationship]) -> ColumnElement[bool]:
    """The rows of `search_access` (or an alias: `link`) of these relationships. Written
    `type || ' ' || param IN (...)`, so no index serves it: a patient's few rows are read in
    one index range by patient, then filtered."""
    kinds = inline_all(sorted(f"{r.res_type} {r.actor_param}" for r in links))
    kind: ColumnElement[str] = link.c.res_type + literal_column("' '") + link.c.param
    return kind.in_(kinds)


def _fact_columns(
    kind: int,
    patient: ColumnElement[Any],
    actor_type: ColumnElement[Any] | None = None,
    actor_id: ColumnElement[Any] | None = None,
) -> list[ColumnElement[Any]]:
    """A LINK or COMPARTMENT row in the columns of a rule row (`_rules_in_force`): typed NULLs
    where it has no value (PostgreSQL unions need types)."""
    text = cast(null(), String())
    return [
        literal_column(str(kind)),
        patient,
        text,
        text if actor_type is None else actor_type,
        text if actor_id is None else actor_id,
        text,
        text,
        cast(null(), DateTime()),
        cast(null(), Integer()),
    ]


def _link_actors(
    res_type: str, patient_param: str, actor_params: set[str], patients: Patients
) -> Select[Any]:
    """Actors of the `res_type` resources that reference a listed patient through
    `patient_param` (`_linked_by`): index ranges for the sources, a lookup per source."""
    subject = search_reference.alias("link_subject")
    actor = search_reference.alias("link_actor")
    return (
        select(subject.c.target_id, actor.c.target_type, actor.c.target_id)
        .where(
            subject.c.res_type == inline(res_type),
            subject.c.param == inline(patient_param),
            _listed(subject.c.target_id, patients),
            subject.c.target_type == inline("Patient"),
            actor.c.res_pk == subject.c.res_pk,
            actor.c.param.in_(inline_all(actor_params)),
        )
        .distinct()
    )
