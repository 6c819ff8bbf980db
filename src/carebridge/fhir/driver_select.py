"""Small, hot SELECTs compiled once and executed by the DB-API cursor.

A statement executed on every request (the access checks: policy_facts_sql.py, the role
watermark) costs
more in SQLAlchemy's per-execution work (cache key, parameter processing, result set-up) than
in the database: measured on SQLite 160 µs through `Connection.execute` against 73 µs for the
same SQL on the cursor. Such a statement is built with SQLAlchemy Core as usual, compiled here
once per dialect, and run on the connection's DB-API cursor, inside the caller's transaction.

Rules for statements run this way: every parameter is a named `bindparam` the caller supplies
(constants are written into the text, fhir/search/inline.py; no expanding `IN`), and rows hold
the driver's own values (no result processing: on SQLite a datetime comes back as text).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import ClauseElement, Connection, Dialect, Executable
from sqlalchemy.sql.compiler import SQLCompiler


@dataclass(frozen=True)
class DriverStatement:
    """SQL text for one dialect and how to turn named values into the driver's parameters."""

    sql: str
    order: tuple[str, ...] | None  # positional drivers (SQLite `?`): names in order
    processors: Mapping[str, Callable[[Any], Any]]  # bind processing of the types (datetimes)

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
            processors[name] = processor
    order = tuple(compiled.positiontup or ()) if compiled.positional else None
    return DriverStatement(compiled.string, order, processors)


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
