"""Fast inserts of new resources and search index rows, at the driver level.

Index rows are the bulk of every write (≈10 per resource). Going through SQLAlchemy's per-row
parameter processing costs more than the database work itself, so rows are built as tuples and
handed to the driver: `executemany` with a prepared statement on SQLite, `COPY ... FROM STDIN` on
PostgreSQL. Datetimes are written to SQLite in exactly the text form SQLAlchemy's DateTime type
uses (`YYYY-MM-DD HH:MM:SS.ffffff`), so comparisons with bound datetimes stay correct.

New resource rows get their primary keys up front so index rows can point at them without a
round trip per row: on PostgreSQL from the table's sequence (`nextval`, safe under concurrency);
on SQLite the first row is inserted with RETURNING, which takes the database's write lock, and the
rest follow it consecutively (no other writer can insert until this transaction ends).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection

from carebridge.fhir.records import StoredResource
from carebridge.fhir.search.extract import IndexRows

_RESOURCE_COLUMNS = (
    "pk",
    "res_type",
    "res_id",
    "version",
    "last_updated",
    "deleted",
    "method",
    "content",
)


class DuplicateKeyError(Exception):
    """A new resource collided with an existing (type, id)."""


def insert_resources(
    conn: Connection, rows: list[StoredResource], encoded: list[bytes | None] | None = None
) -> list[int]:
    """Insert new current-version rows; returns their primary keys in order. `encoded` holds,
    per row, its content already serialized (bulk loads), else None to serialize `content`."""
    if not rows:
        return []
    texts = [
        e.decode() if e is not None else _json(r.content)
        for r, e in zip(rows, encoded or [None] * len(rows), strict=True)
    ]
    raw = conn.connection.driver_connection
    dbapi_error = conn.dialect.dbapi.IntegrityError  # type: ignore[union-attr]
    try:
        if conn.dialect.name == "sqlite":
            return _insert_sqlite(raw, rows, texts)
        return _insert_postgres(raw, rows, texts)
    except dbapi_error as exc:
        raise DuplicateKeyError(str(exc)) from exc


def _json(content: dict[str, Any] | None) -> str | None:
    return orjson.dumps(content).decode() if content is not None else None


def _insert_sqlite(raw: Any, rows: list[StoredResource], texts: list[str | None]) -> list[int]:
    first, rest = rows[0], rows[1:]
    cursor = raw.cursor()
    cursor.execute(
        "INSERT INTO resource (res_type, res_id, version, last_updated, deleted, method, content)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING pk",
        _sqlite_values(first, texts[0]),
    )
    base = int(cursor.fetchone()[0])
    cursor.close()
    pks = [base, *range(base + 1, base + 1 + len(rest))]
    marks = ", ".join("?" for _ in _RESOURCE_COLUMNS)
    stamps: dict[datetime, str] = {}
    raw.executemany(
        f"INSERT INTO resource ({', '.join(_RESOURCE_COLUMNS)}) VALUES ({marks})",
        [
            (pk, *_sqlite_values(r, text, stamps))
            for pk, r, text in zip(pks[1:], rest, texts[1:], strict=True)
        ],
    )
    return pks


def _sqlite_values(
    r: StoredResource, content: str | None, stamps: dict[datetime, str] | None = None
) -> tuple[Any, ...]:
    stamps = {} if stamps is None else stamps
    stamp = stamps.get(r.last_updated)
    if stamp is None:
        stamp = stamps[r.last_updated] = sqlite_datetime(r.last_updated)
    return (r.res_type, r.res_id, r.version, stamp, int(r.deleted), r.method, content)


def _insert_postgres(raw: Any, rows: list[StoredResource], texts: list[str | None]) -> list[int]:
    with raw.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence('resource', 'pk')) FROM generate_series(1, %s)",
            (len(rows),),
        )
        pks = [int(r[0]) for r in cursor.fetchall()]
        with cursor.copy(f"COPY resource ({', '.join(_RESOURCE_COLUMNS)}) FROM STDIN") as copy:
            for pk, r, content in zip(pks, rows, texts, strict=True):
                copy.write_row(
                    (
                        pk,
                        r.res_type,
                        r.res_id,
                        r.version,
                        r.last_updated,
                        r.deleted,
                        r.method,
                        content,
                    )
                )
    return pks


def insert_absent_resources(
    conn: Connection, rows: list[StoredResource], encoded: list[bytes]
) -> dict[tuple[str, str], int]:
    """Insert the rows whose (type, id) is not stored yet; returns the primary keys of the rows
    inserted. One statement per chunk, `ON CONFLICT DO NOTHING` on the (type, id) unique key, so
    the check and the insert are one index probe per row whatever the planner's statistics say,
    and a concurrent writer of the same id makes this one skip it rather than fail."""
    if not rows:
        return {}
    texts = [e.decode() for e in encoded]
    if conn.dialect.name == "sqlite":
        return _insert_absent_sqlite(conn.connection.driver_connection, rows, texts)
    return _insert_absent_postgres(conn.connection.driver_connection, rows, texts)


_ABSENT_CHUNK = 1_000  # 7 columns per row: under SQLite's 32,766 bound parameters


def _insert_absent_sqlite(
    raw: Any, rows: list[StoredResource], texts: list[str]
) -> dict[tuple[str, str], int]:
    created: dict[tuple[str, str], int] = {}
    stamps: dict[datetime, str] = {}
    for start in range(0, len(rows), _ABSENT_CHUNK):
        chunk = range(start, min(start + _ABSENT_CHUNK, len(rows)))
        values = ", ".join("(?, ?, ?, ?, ?, ?, ?)" for _ in chunk)
        params = [v for i in chunk for v in _sqlite_values(rows[i], texts[i], stamps)]
        cursor = raw.execute(
            "INSERT INTO resource (res_type, res_id, version, last_updated, deleted, method,"
            f" content) VALUES {values} ON CONFLICT DO NOTHING RETURNING pk, res_type, res_id",
            params,
        )
        created.update(((t, i), int(pk)) for pk, t, i in cursor.fetchall())
        cursor.close()
    return created


def _insert_absent_postgres(
    raw: Any, rows: list[StoredResource], texts: list[str]
) -> dict[tuple[str, str], int]:
    with raw.cursor() as cursor:
        # %b: arrays travel in binary form (the text form escapes every element in Python)
        cursor.execute(
            "INSERT INTO resource (res_type, res_id, version, last_updated, deleted, method,"
            " content) SELECT t, i, v, u, d, m, c::jsonb FROM unnest("
            "%b::varchar[], %b::varchar[], %b::int[], %b::timestamp[], %b::bool[],"
            " %b::varchar[], %b::text[]) AS x(t, i, v, u, d, m, c)"
            " ON CONFLICT (res_type, res_id) DO NOTHING RETURNING pk, res_type, res_id",
            (
                [r.res_type for r in rows],
                [r.res_id for r in rows],
                [r.version for r in rows],
                [r.last_updated for r in rows],
                [r.deleted for r in rows],
                [r.method for r in rows],
                texts,
            ),
        )
        return {(t, i): int(pk) for pk, t, i in cursor.fetchall()}


COLUMNS = {
    "token": ("system", "code"),
    "string": ("value_norm", "value_exact"),
    "date": ("start", "end"),
    "reference": ("target_type", "target_id", "target_url"),
    "quantity": ("value", "system", "code", "unit"),
    "number": ("value",),
    "uri": ("value",),
    "consent": (
        "patient_id",
        "depth",
        "effect",
        "actor_type",
        "actor_id",
        "purpose",
        "class_type",
        "start",
        "end",
        "recorded",
    ),
    "access": ("patient_id", "actor_type", "actor_id"),
}


def sqlite_datetime(value: datetime) -> str:
    """The text SQLAlchemy's DateTime stores in SQLite (PostgreSQL reads it as a timestamp)."""
    return value.isoformat(" ", "microseconds")


def collect(
    items: Iterable[tuple[int, str, IndexRows]], *, sqlite: bool
) -> dict[str, list[tuple[Any, ...]]]:
    """Rows per index table as (res_pk, res_type, param, *values) tuples."""
    batches: dict[str, list[tuple[Any, ...]]] = {name: [] for name in COLUMNS}
    for pk, res_type, rows in items:
        for name in COLUMNS:
            table_rows = getattr(rows, name)
            if not table_rows:
                continue
            out = batches[name]
            if name == "date" and sqlite:
                out.extend(
                    (pk, res_type, p, sqlite_datetime(s), sqlite_datetime(e))
                    for p, s, e in table_rows
                )
            elif name == "consent":
                out.extend(
                    (pk, res_type, "rule", *_consent_values(row, sqlite)) for row in table_rows
                )
            else:
                out.extend((pk, res_type, *row) for row in table_rows)
    return batches


def _consent_values(row: tuple[Any, ...], sqlite: bool) -> tuple[Any, ...]:
    if not sqlite:
        return row
    return (*row[:7], *(sqlite_datetime(d) for d in row[7:]))


def insert_index_rows(conn: Connection, items: Iterable[tuple[int, str, IndexRows]]) -> None:
    """Insert the index rows of many resources: one driver call per table."""
    sqlite = conn.dialect.name == "sqlite"
    batches = collect(items, sqlite=sqlite)
    raw: Any = conn.connection.driver_connection
    for name, rows in batches.items():
        if not rows:
            continue
        if sqlite:
            columns = ("res_pk", "res_type", "param", *COLUMNS[name])
            quoted = ", ".join(f'"{c}"' for c in columns)
            marks = ", ".join("?" for _ in columns)
            raw.executemany(f"INSERT INTO search_{name} ({quoted}) VALUES ({marks})", rows)
        else:
            copy_rows(raw, name, rows)


def copy_rows(raw: Any, name: str, rows: Iterable[tuple[Any, ...]]) -> None:
    """PostgreSQL: (res_pk, res_type, param, *values) rows into `search_<name>` by COPY."""
    columns = ("res_pk", "res_type", "param", *COLUMNS[name])
    quoted = ", ".join(f'"{c}"' for c in columns)
    with raw.cursor() as cursor, cursor.copy(f"COPY search_{name} ({quoted}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
