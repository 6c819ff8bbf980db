"""SearchQuery -> SQLAlchemy statements (pure statement building; execution lives in the store).

Each criterion becomes a condition on `resource.pk`. The most selective criterion (by parameter
type: _id, reference, identifier-like token, string, token, then ranges) drives the query as an
`IN (subquery)` over its index table; the others are correlated `EXISTS` probes through the
`(res_pk, param)` index, so a patient-scoped search touches only that patient's rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    exists,
    false,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    true,
)

from carebridge.fhir.guard import UNRESTRICTED, AccessScope
from carebridge.fhir.search.dates import InvalidDateError, date_range
from carebridge.fhir.search.derived import compartment_index_params
from carebridge.fhir.search.param_sql import param_rows
from carebridge.fhir.search.parse import parse_search
from carebridge.fhir.search.policy_sql import policy_condition
from carebridge.fhir.search.query import Criterion, SearchQuery, SortKey
from carebridge.fhir.search.values import (
    next_prefix,
    normalize_string,
    number_range,
    parse_reference,
    split_prefix,
    split_unescaped,
    unescape,
)
from carebridge.fhir.tables import INDEX_TABLES, resource
from carebridge.kit.errors import AppError, InvalidRequestError

_DRIVE_ORDER = {
    "_id": 0,
    "reference": 1,
    "string": 3,
    "token": 4,
    "uri": 4,
    "date": 6,
    "quantity": 6,
    "number": 6,
    "_lastUpdated": 7,
    "_has": 5,
}


@dataclass(frozen=True)
class Compiled:
    where: ColumnElement[bool]
    order_by: tuple[ColumnElement[Any], ...]
    total: int | None = None  # the number of matches, when known without counting


def compile_query(query: SearchQuery, base_url: str, scope: AccessScope = UNRESTRICTED) -> Compiled:
    """The WHERE clause and ORDER BY for `query` over the `resource` table, within `scope`."""
    conditions: list[ColumnElement[bool]] = [resource.c.deleted == false()]
    if query.resource_types:
        conditions.append(resource.c.res_type.in_(query.resource_types))
    conditions.extend(scope_conditions(scope, query.resource_types))
    ordered = sorted(query.criteria, key=_selectivity_rank)
    for position, criterion in enumerate(ordered):
        conditions.append(
            criterion_condition(criterion, base_url, drive=position == 0, scope=scope)
        )
    return Compiled(and_(*conditions), _order_by(query.sort))


def scope_conditions(
    scope: AccessScope, types: Sequence[str] = (), row: Any = resource
) -> list[ColumnElement[bool]]:
    """What an access scope adds to any statement over `row` (`resource` or an alias of it);
    enforced in SQL, not Python.

    Types outside the scope's readable types are excluded. With a patient context, resources of
    types in the Patient compartment (R4 CompartmentDefinition `patient`) must reference that
    patient through one of the compartment's parameters; the Patient itself is its own
    compartment; types outside the compartment definition (Medication, Organization, ...) are
    not patient data and follow the type rule only. A user's policy (roles and Consent) adds
    `policy_condition`.
    """
    conditions: list[ColumnElement[bool]] = []
    if scope.resource_types is not None:
        conditions.append(row.c.res_type.in_(sorted(scope.resource_types)))
    if scope.patient_id is not None:
        conditions.append(_patient_compartment(scope.patient_id, types, row))
    if scope.policy is not None:
        conditions.append(policy_condition(scope.policy, types, row, scope.known))
    for res_type, searches in scope.filters:
        if types and res_type not in types:
            continue
        matches = or_(*(_on_row(_filter_condition(res_type, q), row) for q in searches))
        conditions.append(or_(row.c.res_type != res_type, matches))
    return conditions


def _on_row(condition: ColumnElement[bool], row: Any) -> ColumnElement[bool]:
    return condition if row is resource else _rebind(condition, row)


@lru_cache(maxsize=256)
def _filter_condition(res_type: str, search: tuple[tuple[str, str], ...]) -> ColumnElement[bool]:
    """A scope's search restriction as a condition on `resource` (parsed like a search; a
    restriction that cannot be parsed matches nothing: access fails closed)."""
    try:
        query = parse_search([res_type], list(search), strict=True)
    except AppError:
        return false()
    criteria = [criterion_condition(c, "") for c in query.criteria]
    return and_(*criteria) if criteria else true()


def _patient_compartment(patient_id: str, types: Sequence[str], row: Any) -> ColumnElement[bool]:
    members = compartment_index_params()
    wanted = {t: members[t] for t in (types or members) if t in members and t != "Patient"}
    ref = INDEX_TABLES["reference"]
    own = and_(row.c.res_type == "Patient", row.c.res_id == patient_id)
    parts = [own]
    if wanted:
        by_type = [and_(ref.c.res_type == t, ref.c.param.in_(p)) for t, p in sorted(wanted.items())]
        linked = select(ref.c.res_pk).where(
            ref.c.target_type == "Patient", ref.c.target_id == patient_id, or_(*by_type)
        )
        parts.append(row.c.pk.in_(linked))
    if not types:
        parts.append(row.c.res_type.not_in(sorted(members)))
    elif outside := [t for t in types if t not in members]:
        parts.append(row.c.res_type.in_(outside))
    return or_(*parts)


def _selectivity_rank(criterion: Criterion) -> int:
    if criterion.modifier in ("missing", "not"):
        return 9
    if criterion.special:
        return _DRIVE_ORDER[criterion.special]
    if (
        criterion.type == "token"
        and criterion.code in ("identifier", "code")
        and any("|" in v for v in criterion.values)
    ):
        return 2
    return _DRIVE_ORDER.get(criterion.type, 8)


def criterion_condition(
    criterion: Criterion,
    base_url: str,
    *,
    drive: bool = False,
    scope: AccessScope = UNRESTRICTED,
) -> ColumnElement[bool]:
    """The condition on `resource` that `criterion` imposes (values OR-ed). Resources a chain or
    `_has` looks through must be within `scope` too, or their existence would leak."""
    if criterion.special == "_id":
        return _id_condition(criterion)
    if criterion.special == "_lastUpdated":
        return or_(
            *(
                _date_value(resource.c.last_updated, resource.c.last_updated, v)
                for v in criterion.values
            )
        )
    if criterion.special == "_has":
        return _has_condition(criterion, base_url, scope)
    table = INDEX_TABLES[criterion.type]
    rows = and_(
        param_rows(table, criterion.resource_type, criterion.code), _type_scope(table, criterion)
    )
    if criterion.modifier == "missing":
        probe = exists().where(table.c.res_pk == resource.c.pk, rows)
        return not_(probe) if criterion.values[0] == "true" else probe
    if criterion.chain:
        match = _chain_condition(criterion, table, base_url, scope)
    else:
        match = or_(*(_value_condition(criterion, table, v, base_url) for v in criterion.values))
    if criterion.modifier == "not":
        return resource.c.pk.not_in(select(table.c.res_pk).where(rows, match))
    if drive:
        return resource.c.pk.in_(select(table.c.res_pk).where(rows, match))
    return _probe(table, rows, match)


def _probe(table: Any, *conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    """A criterion that does not drive: an `EXISTS` checked for each candidate row through the
    `(res_pk, param)` index. `OFFSET 0` keeps it so on PostgreSQL, which otherwise flattens it
    into a semi-join it may start from: a prepared statement's generic plan, which cannot see
    the values, then drove `Observation?patient=X&code=85354-9&...` from the 1,440 rows of a
    common code instead of the patient's 35 (162 ms instead of 0.5 ms at 1M resources;
    https://www.postgresql.org/docs/current/sql-prepare.html, "generic plan")."""
    probe = select(table.c.res_pk).where(table.c.res_pk == resource.c.pk, *conditions)
    probe = probe.offset(literal_column("0"))
    return probe.exists()


def _type_scope(table: object, criterion: Criterion) -> ColumnElement[bool]:
    column = table.c.res_type  # type: ignore[attr-defined]
    if criterion.resource_type:
        return column == criterion.resource_type  # type: ignore[no-any-return]
    return column == resource.c.res_type  # type: ignore[no-any-return]


def _id_condition(criterion: Criterion) -> ColumnElement[bool]:
    condition = resource.c.res_id.in_(criterion.values)
    if criterion.modifier == "not":
        return not_(condition)
    if criterion.modifier == "missing":
        return false() if criterion.values[0] == "true" else true()
    return condition


def _value_condition(
    criterion: Criterion, table: object, value: str, base: str
) -> ColumnElement[bool]:
    builder = _VALUE_BUILDERS[criterion.type]
    return builder(table, value, criterion.modifier, base)


def _token(t: object, value: str, _modifier: str | None, _base: str) -> ColumnElement[bool]:
    c = t.c  # type: ignore[attr-defined]
    parts = split_unescaped(value, "|")
    if len(parts) == 1:
        return c.code == unescape(value)  # type: ignore[no-any-return]
    system, code = unescape(parts[0]), unescape("|".join(parts[1:]))
    if system == "":
        return and_(c.system.is_(None), c.code == code)
    if code == "":
        return c.system == system  # type: ignore[no-any-return]
    return and_(c.system == system, c.code == code)


def _string(t: object, value: str, modifier: str | None, _base: str) -> ColumnElement[bool]:
    c = t.c  # type: ignore[attr-defined]
    value = unescape(value)
    if modifier == "exact":
        return c.value_exact == value  # type: ignore[no-any-return]
    norm = normalize_string(value)
    if modifier == "contains":
        escaped = norm.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return c.value_norm.like(f"%{escaped}%", escape="\\")  # type: ignore[no-any-return]
    return and_(c.value_norm >= norm, c.value_norm < next_prefix(norm))


def _uri(t: object, value: str, modifier: str | None, _base: str) -> ColumnElement[bool]:
    c = t.c  # type: ignore[attr-defined]
    value = unescape(value)
    if modifier == "below":
        return and_(c.value >= value, c.value < next_prefix(value))
    if modifier == "above":
        return literal(value).like(c.value + "%")
    return c.value == value  # type: ignore[no-any-return]


def _reference(t: object, value: str, _modifier: str | None, base: str) -> ColumnElement[bool]:
    """search.html#reference: `id`, `Type/id` or an absolute URL. A relative value and the
    server's own absolute URL for it match each other; another server's URL matches only itself."""
    c = t.c  # type: ignore[attr-defined]
    value = unescape(value)
    local = (
        value[len(base) :].lstrip("/")
        if base and value.startswith(base.rstrip("/") + "/")
        else value
    )
    on_this_server = _on_this_server(c, base)
    if "/" not in local and ":" not in local:
        return and_(c.target_id == local, on_this_server)
    rtype, rid, url = parse_reference(local)
    if url is not None:
        return c.target_url == url  # type: ignore[no-any-return]
    return and_(c.target_id == rid, c.target_type == rtype, on_this_server)


def _on_this_server(c: Any, base: str) -> ColumnElement[bool]:
    """A relative reference, or an absolute one to this server's base."""
    if not base:
        return c.target_url.is_(None)  # type: ignore[no-any-return]
    return or_(
        c.target_url.is_(None), c.target_url.startswith(base.rstrip("/") + "/", autoescape=True)
    )


def _chain_condition(
    criterion: Criterion, table: object, base: str, scope: AccessScope
) -> ColumnElement[bool]:
    """References whose target (of one of the chain's types) matches that type's criterion."""
    c = table.c  # type: ignore[attr-defined]
    alternatives = []
    for inner in criterion.chain:
        target = resource.alias()
        condition = _rebind(criterion_condition(inner, base, drive=True), target)
        matches = select(target.c.res_id).where(
            target.c.res_type == inner.resource_type,
            target.c.deleted == false(),
            condition,
            *scope_conditions(scope, [inner.resource_type], target),
        )
        alternatives.append(and_(c.target_type == inner.resource_type, c.target_id.in_(matches)))
    return and_(or_(*alternatives), _on_this_server(c, base))


def _has_condition(criterion: Criterion, base: str, scope: AccessScope) -> ColumnElement[bool]:
    """Resources referred to, through `criterion.param`, by a resource matching the inner
    criterion (`_has`, search.html#has)."""
    assert criterion.param is not None
    (inner,) = criterion.chain
    ref = INDEX_TABLES["reference"]
    source = resource.alias()
    sources = select(source.c.pk).where(
        source.c.res_type == inner.resource_type,
        source.c.deleted == false(),
        _rebind(criterion_condition(inner, base, drive=True), source),
        *scope_conditions(scope, [inner.resource_type], source),
    )
    targets = select(ref.c.target_id).where(
        param_rows(ref, inner.resource_type, criterion.param.code),
        ref.c.res_type == inner.resource_type,
        ref.c.target_type == resource.c.res_type,
        ref.c.res_pk.in_(sources),
        _on_this_server(ref.c, base),
    )
    return resource.c.res_id.in_(targets)


def _rebind(condition: ColumnElement[bool], alias: object) -> ColumnElement[bool]:
    from sqlalchemy.sql.util import ClauseAdapter

    return ClauseAdapter(alias).traverse(condition)  # type: ignore[arg-type]


def _date(t: object, value: str, _modifier: str | None, _base: str) -> ColumnElement[bool]:
    c = t.c  # type: ignore[attr-defined]
    return _date_value(c.start, c.end, value)


def _date_value(
    start: ColumnElement[datetime], end: ColumnElement[datetime], value: str
) -> ColumnElement[bool]:
    """R4 search.html#prefix semantics over the target range [start, end]."""
    prefix, raw = split_prefix(value)
    try:
        low, high = date_range(raw)
    except InvalidDateError as exc:
        raise InvalidRequestError(str(exc)) from exc
    within = and_(start >= low, end <= high)
    conditions: dict[str, ColumnElement[bool]] = {
        "eq": within,
        "ne": not_(within),
        "gt": end > high,
        "lt": start < low,
        "ge": or_(end > high, within),
        "le": or_(start < low, within),
        "sa": start > high,
        "eb": end < low,
    }
    if prefix == "ap":
        slack = max((high - low) / 10, timedelta(days=1))
        return and_(start <= high + slack, end >= low - slack)
    return conditions[prefix]


def _number_range(raw: str) -> tuple[float, float, float]:
    """Value and the implicit range of its precision (search.html#number: 100 = [99.5, 100.5));
    parse_search has already refused values that are not finite decimals."""
    try:
        return number_range(raw)
    except ValueError as exc:
        raise InvalidRequestError(str(exc)) from None


def _numeric(column: ColumnElement[float], value: str) -> ColumnElement[bool]:
    prefix, raw = split_prefix(value)
    number, low, high = _number_range(raw)
    in_range = and_(column >= low, column < high)
    conditions: dict[str, ColumnElement[bool]] = {
        "eq": in_range,
        "ne": not_(in_range),
        "gt": column > number,
        "lt": column < number,
        "ge": column >= number,
        "le": column <= number,
        "sa": column > number,
        "eb": column < number,
        "ap": and_(column >= number - abs(number) * 0.1, column <= number + abs(number) * 0.1),
    }
    return conditions[prefix]


def _number(t: object, value: str, _modifier: str | None, _base: str) -> ColumnElement[bool]:
    return _numeric(t.c.value, value)  # type: ignore[attr-defined]


def _quantity(t: object, value: str, _modifier: str | None, _base: str) -> ColumnElement[bool]:
    c = t.c  # type: ignore[attr-defined]
    parts = split_unescaped(value, "|")
    if len(parts) not in (1, 3):
        raise InvalidRequestError(f"quantity must be [prefix]number[|system|code], not {value!r}")
    condition = _numeric(c.value, parts[0])
    if len(parts) == 3:
        system, code = unescape(parts[1]), unescape(parts[2])
        if system:
            condition = and_(condition, c.system == system, c.code == code)
        elif code:
            condition = and_(condition, or_(c.code == code, c.unit == code))
    return condition


_VALUE_BUILDERS = {
    "token": _token,
    "string": _string,
    "uri": _uri,
    "reference": _reference,
    "date": _date,
    "number": _number,
    "quantity": _quantity,
}


def _order_by(keys: Sequence[SortKey]) -> tuple[ColumnElement[Any], ...]:
    order: list[ColumnElement[Any]] = []
    for key in keys:
        expression = _sort_expression(key)
        order.append(expression.is_(None))  # values before missing ones, both directions
        order.append(expression.desc() if key.descending else expression.asc())
    order.append(resource.c.pk.asc())
    return tuple(order)


_SORT_COLUMNS = {
    "date": "range",
    "string": "value_norm",
    "token": "code",
    "quantity": "value",
    "number": "value",
    "uri": "value",
}


def _sort_expression(key: SortKey) -> ColumnElement[object]:
    if key.special == "_id":
        return resource.c.res_id
    if key.special == "_lastUpdated":
        return resource.c.last_updated
    table = INDEX_TABLES[key.type]
    name = _SORT_COLUMNS[key.type]
    column = table.c["end" if key.descending else "start"] if name == "range" else table.c[name]
    aggregate = func.max(column) if key.descending else func.min(column)
    return (
        select(aggregate)
        .where(
            table.c.res_pk == resource.c.pk,
            table.c.res_type == resource.c.res_type,
            param_rows(table, None, key.code),
        )
        .scalar_subquery()
    )
