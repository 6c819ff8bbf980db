"""`expr IN <a JSON array bound as one parameter>`, for SQLite and PostgreSQL.

A list of a few hundred values as an IN-list makes a statement with hundreds of bind parameters:
slow to build, to compile and (on PostgreSQL) to plan, and different for every list length. One
JSON text parameter keeps the statement the same whatever the list: SQLite reads it with
`json_each` (https://www.sqlite.org/json1.html#jeach), PostgreSQL with
`jsonb_array_elements_text` (https://www.postgresql.org/docs/current/functions-json.html). Both
evaluate the uncorrelated subquery once per statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import JSON, Boolean, ColumnElement, String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal

from carebridge.fhir.search.inline import inline


class InJsonList(ColumnElement[bool]):
    """`expr IN <values>`, `values` a JSON array of strings (or, with `integers`, of integers).

    With `seek`, the list is meant to drive index lookups (a few keys, each looked up): on
    PostgreSQL it is then written `expr = ANY(ARRAY(SELECT ...))`, which the planner answers
    with an index scan on `expr` whatever it guesses of the list's length (it guesses 100 rows
    for a set-returning function, and may prefer to scan a whole index range and filter).
    Without it, the list is a set that rows are checked against (hashed on PostgreSQL)."""

    inherit_cache = True
    type = Boolean()
    # A comparison already: without this, SQLite gets `(x IN (...)) = 1`, which no index serves.
    _is_implicitly_boolean = True
    _traverse_internals = [
        ("expr", InternalTraversal.dp_clauseelement),
        ("values", InternalTraversal.dp_clauseelement),
        ("integers", InternalTraversal.dp_boolean),
        ("seek", InternalTraversal.dp_boolean),
    ]

    def __init__(
        self,
        expr: ColumnElement[Any],
        values: ColumnElement[Any],
        *,
        integers: bool = False,
        seek: bool = False,
    ) -> None:
        self.expr = expr
        self.values = values
        self.integers = integers
        self.seek = seek


@compiles(InJsonList, "postgresql")
def _postgresql(element: InJsonList, compiler: SQLCompiler, **kw: Any) -> str:
    expr = compiler.process(element.expr, **kw)
    values = compiler.process(element.values, **kw)
    items = f"jsonb_array_elements_text(CAST({values} AS JSONB))"
    if element.integers:
        items = f"CAST({items} AS BIGINT)"
    if element.seek:
        return f"({expr} = ANY(ARRAY(SELECT {items})))"
    return f"({expr} IN (SELECT {items}))"


@compiles(InJsonList)
def _sqlite(element: InJsonList, compiler: SQLCompiler, **kw: Any) -> str:
    expr = compiler.process(element.expr, **kw)
    values = compiler.process(element.values, **kw)
    return f"({expr} IN (SELECT value FROM json_each({values})))"


class InJsonListsByKind(ColumnElement[bool]):
    """`(kind, value)` is one of a set of pairs (a policy's actors: `(type, id)`), written for
    each database the way it checks them fastest.

    PostgreSQL: `joined`, the check of `kind || '/' || value` against one JSON list of every
    pair (`InJsonList`), which it reads once when the statement is bound (policy_sql.py
    `_is_actor`). SQLite: `CASE kind WHEN 'A' THEN value IN <the values of kind A> ... END`, one
    JSON list per kind (`lists`, each an `InJsonList` of the values). SQLite builds the lookup
    table of an `IN` list once per execution, when a row first reaches it (an `OP_Once`): about
    95 µs for a clinician's 203 actors, for each `IN` of the statement a row reaches. A row is
    then only checked against the actors of its kind, and the table of a kind no row has (the
    CareTeams a user's Consent rules may name, most often) is never built. Like `IN`, NULL when
    the kind or the value is NULL."""

    inherit_cache = True
    type = Boolean()
    _is_implicitly_boolean = True
    _traverse_internals = [
        ("kind", InternalTraversal.dp_clauseelement),
        ("value", InternalTraversal.dp_clauseelement),
        ("joined", InternalTraversal.dp_clauseelement),
        ("kinds", InternalTraversal.dp_string_list),
        ("lists", InternalTraversal.dp_clauseelement_list),
    ]

    def __init__(
        self,
        kind: ColumnElement[Any],
        value: ColumnElement[Any],
        joined: InJsonList,
        lists: Sequence[tuple[str, ColumnElement[Any]]],
    ) -> None:
        self.kind = kind
        self.value = value
        self.joined = joined
        self.kinds = [k for k, _ in lists]
        self.lists = [InJsonList(value, values) for _, values in lists]


@compiles(InJsonListsByKind, "postgresql")
def _postgresql_by_kind(element: InJsonListsByKind, compiler: SQLCompiler, **kw: Any) -> str:
    return str(compiler.process(element.joined, **kw))


@compiles(InJsonListsByKind)
def _sqlite_by_kind(element: InJsonListsByKind, compiler: SQLCompiler, **kw: Any) -> str:
    kind = compiler.process(element.kind, **kw)
    value = compiler.process(element.value, **kw)
    whens = " ".join(
        f"WHEN {compiler.process(inline(k), **kw)} THEN {compiler.process(listed, **kw)}"
        for k, listed in zip(element.kinds, element.lists, strict=True)
    )
    absent = f"CASE WHEN {kind} IS NULL OR {value} IS NULL THEN NULL ELSE 0 END"
    return f"(CASE {kind} {whens} ELSE {absent} END)"


class JsonRows(ColumnElement[Any]):
    """An aggregate: the rows of `columns` as one JSON array of arrays (`[]` for none), in no
    particular order. SQLite: `json_group_array(json_array(...))`
    (https://www.sqlite.org/json1.html#jgrouparray); PostgreSQL: `json_agg(json_build_array(...))`
    (https://www.postgresql.org/docs/current/functions-aggregate.html), which gives NULL for
    no rows, hence the `coalesce`. Datetimes come out as each database writes them as text."""

    inherit_cache = True
    type = JSON()
    _traverse_internals = [("columns", InternalTraversal.dp_clauseelement_list)]

    def __init__(self, *columns: ColumnElement[Any]) -> None:
        self.columns = list(columns)


@compiles(JsonRows, "postgresql")
def _postgresql_rows(element: JsonRows, compiler: SQLCompiler, **kw: Any) -> str:
    items = ", ".join(compiler.process(c, **kw) for c in element.columns)
    return f"coalesce(json_agg(json_build_array({items})), CAST('[]' AS JSON))"


@compiles(JsonRows)
def _sqlite_rows(element: JsonRows, compiler: SQLCompiler, **kw: Any) -> str:
    items = ", ".join(compiler.process(c, **kw) for c in element.columns)
    return f"json_group_array(json_array({items}))"


class JsonKeys(ColumnElement[str]):
    """An aggregate: the values of `column` as the text of one JSON array (`[]` for none), in
    no particular order, ready to be bound again as an `InJsonList` list without being parsed
    and serialized in Python. SQLite: `json_group_array`; PostgreSQL: `json_agg` as text."""

    inherit_cache = True
    type = String()
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]

    def __init__(self, column: ColumnElement[Any]) -> None:
        self.column = column


@compiles(JsonKeys, "postgresql")
def _postgresql_keys(element: JsonKeys, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    return f"coalesce(CAST(json_agg({column}) AS TEXT), '[]')"


@compiles(JsonKeys)
def _sqlite_keys(element: JsonKeys, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json_group_array({compiler.process(element.column, **kw)})"
