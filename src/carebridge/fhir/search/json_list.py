"""`expr IN <a JSON array bound as one parameter>`, for SQLite and PostgreSQL.

A list of a few hundred values as an IN-list makes a statement with hundreds of bind parameters:
slow to build, to compile and (on PostgreSQL) to plan, and different for every list length. One
JSON text parameter keeps the statement the same whatever the list: SQLite reads it with
`json_each` (https://www.sqlite.org/json1.html#jeach), PostgreSQL with
`jsonb_array_elements_text` (https://www.postgresql.org/docs/current/functions-json.html). Both
evaluate the uncorrelated subquery once per statement.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, ColumnElement
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal


class InJsonList(ColumnElement[bool]):
    inherit_cache = True
    type = Boolean()
    _traverse_internals = [
        ("expr", InternalTraversal.dp_clauseelement),
        ("values", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, expr: ColumnElement[Any], values: ColumnElement[Any]) -> None:
        self.expr = expr
        self.values = values


@compiles(InJsonList, "postgresql")
def _postgresql(element: InJsonList, compiler: SQLCompiler, **kw: Any) -> str:
    expr = compiler.process(element.expr, **kw)
    values = compiler.process(element.values, **kw)
    return f"({expr} IN (SELECT jsonb_array_elements_text(CAST({values} AS JSONB))))"


@compiles(InJsonList)
def _sqlite(element: InJsonList, compiler: SQLCompiler, **kw: Any) -> str:
    expr = compiler.process(element.expr, **kw)
    values = compiler.process(element.values, **kw)
    return f"({expr} IN (SELECT value FROM json_each({values})))"
