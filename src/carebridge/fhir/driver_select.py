"""Small, hot SELECTs compiled once and executed by the DB-API cursor.

A statement executed on every request (the access checks: policy_facts_sql.py, the role
watermark) costs
more in SQLAlchemy's per-execution work (cache key, parameter processing, result set-up) than
in the database: measured on SQLite 160 µs through `Connection.execute` against 73 µs for the
same SQL on the cursor. Such a statement is built with SQLAlchemy Core as usual, compiled here
once per dialect, and run on the connection's DB-API cursor, inside the caller's transaction.

Rules for statements run this way: every parameter is a named `bindparam` the caller supplies
(constants are written into the text, fhir/search/inline.py; no expanding `IN`). Rows from
`driver_rows` hold the driver's own values (no result processing: on SQLite a datetime comes
back as text); `driver_row` converts its one row as `Connection.execute` would (the column
types' result processors, found once per statement).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import ClauseElement, Connection, DateTime, Dialect, Executable, Select
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeEngine


@dataclass(frozen=True)
class DriverStatement:
    """SQL text for one dialect and how to turn named values into the driver's parameters."""

    sql: str
    order: tuple[str, ...] | None  # positional drivers (SQLite `?`): names in order
    processors: Mapping[str, Callable[[Any], Any]]  # bind processing of the types (datetimes)
    # result processing of the selected columns' types: (column, processor) where there is one
    results: tuple[tuple[int, Callable[[Any], Any]], ...] = ()

    def parameters(self, values: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        processed = {
            k: self.processors[k](v) if k in self.processors else v for k, v in values.items()
        }
        if self.order is None:
            return processed
        return tuple(processed[name] for name in self.order)


@lru_cache(maxsize=64)
def driver_statement(statement: Executable, dialect: Dialect) -> DriverStatement:
    """`statement` compiled for `dialect`, once."""
    assert isinstance(statement, ClauseElement)
    compiled = statement.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    if "POSTCOMPILE" in compiled.string:
        raise ValueError("expanding parameters cannot run on the cursor; inline the constants")
    processors = {}
    for name, bind in compiled.binds.items():
        processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            datetimes = isinstance(bind.type, DateTime)
            processors[name] = _formatted_once(processor) if datetimes else processor
    order = tuple(compiled.positiontup or ()) if compiled.positional else None
    types: list[TypeEngine[Any]] = []
    if isinstance(statement, Select):
        types = [c.type for c in statement.selected_columns]
    processed = [t.dialect_impl(dialect).result_processor(dialect, None) for t in types]
    results = tuple((i, f) for i, f in enumerate(processed) if f is not None)
    return DriverStatement(compiled.string, order, processors, results)


def _formatted_once(processor: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`processor` (a datetime's bind processing: on SQLite, formatting it as text) remembering
    its last results: the times bound on every request are few per minute (a policy's `at`).
    Keyed by the time zone too: equal instants in two zones are different text."""

    @lru_cache(maxsize=64)
    def processed(value: Any, _zone: Any) -> Any:
        return processor(value)

    return lambda value: processed(value, getattr(value, "tzinfo", None))


@contextmanager
def driver_rows(
    conn: Connection, statement: Executable, values: Mapping[str, Any]
) -> Iterator[Iterator[tuple[Any, ...]]]:
    """The rows of `statement` with `values`, read from the cursor as they are iterated (a
    reader may stop early; SQLite then does not compute the rest)."""
    compiled = driver_statement(statement, conn.dialect)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(compiled.sql, compiled.parameters(values))
        yield iter(cursor)
    finally:
        cursor.close()


def driver_row(
    conn: Connection, statement: Select[Any], values: Mapping[str, Any]
) -> tuple[Any, ...] | None:
    """The first row of `statement` with `values`, its values converted by the column types
    as `Connection.execute` converts them (datetimes, booleans and JSON on SQLite); None when
    there is none."""
    compiled = driver_statement(statement, conn.dialect)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(compiled.sql, compiled.parameters(values))
        row = cursor.fetchone()
    finally:
        cursor.close()
    if row is None:
        return None
    converted = list(row)
    for i, convert in compiled.results:
        if converted[i] is not None:
            converted[i] = convert(converted[i])
    return tuple(converted)
