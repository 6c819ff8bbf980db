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
    and_,
    bindparam,
    cast,
    false,
    literal_column,
    null,
    or_,
    select,
    union_all,
)

from carebridge.fhir.access_version import current_version
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
# a read's Consent rules (`read_statement`), put in deciding order in Python
READ_RULE_COLUMNS = (
    "patient",
    "effect",
    "actor_type",
    "actor_id",
    "purpose",
    "class_type",
    "recorded",
    "depth",
)
RES_ID = "res_id"  # the id of the resource a read statement finds
RULES, LINKS, PATIENTS_OF = "rules", "links", "patients"  # its columns of facts


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
    facts = _facts(relationships, patients)
    return select(*(facts.c[k] for k in FACT_COLUMNS)).order_by(*_deciding_order(facts))


@lru_cache(maxsize=256)
def read_statement(
    relationships: tuple[Relationship, ...], res_type: str, params: tuple[str, ...] | None
) -> Select[Any]:
    """The resource `res_type`/`res_id` (bound as `res_id`) as `select(resource)` returns it,
    with the facts that decide a read of it under a policy with these `relationships`, for the
    patients of that row (a Patient: itself; another type: those it references through the
    compartment `params`), each column a JSON array in no particular order:

    - `rules`: `READ_RULE_COLUMNS` for each of their Consent rules in force (`policy_at`);
    - `links`: `(patient, actor type, actor id)` for each actor their summary rows link them
      to through the summarized `relationships` (access_links.py);
    - `patients` (not for a Patient): the patients whose compartment the row is in.

    One statement instead of two for a read under a policy: the facts are correlated
    subqueries of the row found, which cost the database a few index lookups more and save a
    statement (on PostgreSQL a round trip): ADR 0015, amendment 2. Three lean columns rather
    than one union of wide rows: most patients have no Consent rules, and their read is then
    decided from the links alone (patient_policy.py)."""
    row = resource.alias("found")
    patients: Patients = "one" if params is None else params
    rules = _rules_in_force(patients, row).correlate(row).subquery("rules")
    columns = [
        *(row.c[c.name] for c in resource.c),
        _json_rows(rules, READ_RULE_COLUMNS).label(RULES),
        _read_links(relationships, patients, row).label(LINKS),
    ]
    if isinstance(patients, tuple):
        found = _row_patients(patients, row).subquery("compartment")
        columns.append(_json_rows(found, ("target_id",)).label(PATIENTS_OF))
    return select(*columns).where(
        row.c.res_type == inline(res_type), row.c.res_id == bindparam(RES_ID, type_=String())
    )


@lru_cache(maxsize=256)
def row_statement(res_type: str, params: tuple[str, ...] | None) -> Select[Any]:
    """The resource `res_type`/`res_id` (bound as `res_id`) as `select(resource)` returns it,
    with the version of the access data in the statement's snapshot (`VERSION`,
    access_version.py) and, for a type other than Patient, the `patients` whose compartment it
    is in through `params` (as in `read_statement`): a read decided by a set of visible
    patients (visible_patients.py) needs no more."""
    row = resource.alias("found")
    columns = [*(row.c[c.name] for c in resource.c), current_version().label(VERSION)]
    if params is not None:
        found = _row_patients(params, row).subquery("compartment")
        columns.append(_json_rows(found, ("target_id",)).label(PATIENTS_OF))
    return select(*columns).where(
        row.c.res_type == inline(res_type), row.c.res_id == bindparam(RES_ID, type_=String())
    )


VERSION = "access_version"  # the column of `row_statement` that holds it


def _json_rows(rows: Subquery, names: Sequence[str]) -> Any:
    """The `names` columns of `rows` as one JSON array of arrays (a scalar subquery)."""
    return select(JsonRows(*(rows.c[n] for n in names))).select_from(rows).scalar_subquery()


def _read_links(relationships: tuple[Relationship, ...], patients: Patients, row: Any) -> Any:
    summarized = [r for r in relationships if r in SUMMARIZED]
    link = search_access.alias("access_link")
    kinds = of_kinds(link, summarized) if summarized else false()  # none: always `[]`
    found = (
        select(link.c.patient_id, link.c.actor_type, link.c.actor_id)
        .where(_listed(link.c.patient_id, patients, row), kinds)
        .correlate(row)
        .subquery("links")
    )
    return _json_rows(found, ("patient_id", "actor_type", "actor_id"))


def _facts(relationships: tuple[Relationship, ...], patients: Patients) -> Subquery:
    """The union of fact rows."""
    parts = [_rules_in_force(patients)]
    summarized = [r for r in relationships if r in SUMMARIZED]
    if summarized:
        parts.append(_summary_links(summarized, patients))
    if isinstance(patients, tuple):
        parts.append(_compartment_rows(patients))
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


def _compartment_rows(params: tuple[str, ...]) -> Select[Any]:
    """`(COMPARTMENT, patient, None, ...)` for each patient of the row (`_row_patients`)."""
    found = _row_patients(params).subquery("compartment")
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


def _summary_links(links: list[Relationship], patients: Patients) -> Select[Any]:
    """Actors the summary rows of these kinds link the patients to (`_summary_link`)."""
    link = search_access.alias("access_link")
    columns = _fact_columns(LINK, link.c.patient_id, link.c.actor_type, link.c.actor_id)
    where = _listed(link.c.patient_id, patients), of_kinds(link, links)
    return select(*columns).where(*where)


def of_kinds(link: Any, links: Sequence[Relationship]) -> ColumnElement[bool]:
    """The rows of `search_access` (or an alias: `link`) of these relationships, as
    `(type = 'A' AND param = 'x') OR ...` with the constants in the text. Not
    `type || ' ' || param IN (...)`: SQLite builds the list's lookup table on every execution
    (measured on the 1M bench store: a read's facts 8 µs slower that way). A patient's few rows
    are read in one index range by patient, then filtered."""
    kinds = sorted({(r.res_type, r.actor_param) for r in links})
    return or_(*(and_(link.c.res_type == inline(t), link.c.param == inline(p)) for t, p in kinds))


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
