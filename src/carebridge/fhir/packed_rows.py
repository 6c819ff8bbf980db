"""Search index rows packed as JSON where they are computed, unpacked by SQLite itself.

On SQLite the writer of a bulk load is the bound (ADR 0005): per index row it used to unpickle a
tuple from the worker, rebuild it with the resource's primary key, and bind it through
`executemany`. Packed, a resource's rows travel as one JSON array per table (built by the worker
with orjson), the writer joins the arrays of a batch with their primary keys into one document
per table, and one `INSERT ... SELECT ... FROM json_each(?)` per table lets SQLite's JSON functions
(https://www.sqlite.org/json1.html#jeach) produce the rows in C. Measured per token row (600,000
rows, 12 per resource): `executemany` 2.0 µs plus about 0.8 µs of unpickling and rebuilding the
tuple with its key; `json_each` 2.2 µs.

PostgreSQL keeps `COPY` (faster there than `json_array_elements`): packed rows that reach it are
decoded into tuples first. Datetimes are packed as `YYYY-MM-DD HH:MM:SS.ffffff`, the text form
SQLAlchemy stores in SQLite and a timestamp literal PostgreSQL reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from sqlalchemy import Connection

from carebridge.fhir.driver_insert import COLUMNS, copy_rows, sqlite_datetime
from carebridge.fhir.search.extract import IndexRows

PackedIndex = dict[str, bytes]  # index table -> JSON array of its rows (without pk and type)

_DATETIME_FROM = {"date": 1, "consent": 7}  # first datetime column of a table's rows


def pack_index_rows(rows: IndexRows) -> PackedIndex:
    """`rows` packed per table (consent rows without their constant parameter code)."""
    packed: PackedIndex = {}
    for name in COLUMNS:
        table_rows: list[tuple[Any, ...]] = getattr(rows, name)
        if not table_rows:
            continue
        if name in _DATETIME_FROM:
            start = _DATETIME_FROM[name]
            table_rows = [(*r[:start], *map(sqlite_datetime, r[start:])) for r in table_rows]
        if name == "consent":
            table_rows = [("rule", *row) for row in table_rows]
        packed[name] = orjson.dumps(table_rows)
    return packed


def insert_packed_rows(conn: Connection, items: Iterable[tuple[int, str, PackedIndex]]) -> None:
    """Insert the packed index rows of many resources: one statement per table."""
    documents: dict[str, list[bytes]] = {}
    for pk, res_type, packed in items:
        head = b"[%d,%b," % (pk, orjson.dumps(res_type))
        for name, rows in packed.items():
            documents.setdefault(name, []).append(head + rows + b"]")
    sqlite = conn.dialect.name == "sqlite"
    raw: Any = conn.connection.driver_connection
    for name, parts in documents.items():
        document = b"[" + b",".join(parts) + b"]"
        if sqlite:
            raw.execute(_sqlite_statement(name), (document.decode(),))
        else:
            copy_rows(raw, name, _unpacked(orjson.loads(document)))


def _unpacked(resources: list[list[Any]]) -> list[tuple[Any, ...]]:
    return [(pk, res_type, *row) for pk, res_type, rows in resources for row in rows]


def _sqlite_statement(name: str) -> str:
    """Each resource's key and type are read once (a materialized CTE: evaluated per index row,
    they would parse the resource's whole document again for every row), then its rows."""
    columns = ("param", *COLUMNS[name])
    values = ", ".join(f"json_extract(j.value, '$[{i}]')" for i in range(len(columns)))
    quoted = ", ".join(f'"{c}"' for c in ("res_pk", "res_type", *columns))
    return (
        "WITH r AS MATERIALIZED (SELECT json_extract(value, '$[0]') AS pk,"
        " json_extract(value, '$[1]') AS res_type, json_extract(value, '$[2]') AS rows"
        f" FROM json_each(?)) INSERT INTO search_{name} ({quoted})"
        f" SELECT r.pk, r.res_type, {values} FROM r, json_each(r.rows) AS j"
    )
