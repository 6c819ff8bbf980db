"""Bringing a stored search index up to the current extraction (INDEX_VERSION).

See docs/search-index.md for the versions.

Used by the migrations that change what extraction writes, inside the migration's transaction:
rows a newer version no longer writes are deleted by (type, parameter), and resources whose rows
a newer version writes differently are re-extracted from their stored content.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, and_, delete, insert, literal, or_, select

from carebridge.fhir.driver_insert import COLUMNS, insert_index_rows
from carebridge.fhir.search.derived import (
    IDENTIFIER_SUFFIX,
    IndexedAs,
    derivations,
    identifiers_only,
    unwritten,
)
from carebridge.fhir.search.extract import IndexRows, index_rows
from carebridge.fhir.search.parameters import registry
from carebridge.fhir.tables import INDEX_TABLES, resource, search_reference

_CHUNK = 500
# the tables of search parameter types: derived parameters (derived.py) read and write only these
_PARAMETER_TABLES = ("token", "string", "date", "reference", "quantity", "number", "uri")


def delete_derived_rows(conn: Connection) -> int:
    """Delete the rows of parameters answered from other parameters' rows (derived.py): every
    row of a union, the reference rows of a restriction. Returns the number of rows deleted."""
    deleted = 0
    for res_type in sorted(registry().resource_types):
        unions, restrictions = sorted(unwritten(res_type)), sorted(identifiers_only(res_type))
        if unions:
            codes = [*unions, *(c + IDENTIFIER_SUFFIX for c in unions)]
            for name in _PARAMETER_TABLES:
                deleted += _delete(conn, INDEX_TABLES[name], res_type, codes)
        if restrictions:
            deleted += _delete(conn, search_reference, res_type, restrictions)
    return deleted


def restore_derived_rows(conn: Connection) -> None:
    """The inverse of `delete_derived_rows` (a downgrade to index version 3): each derived
    parameter's rows written again as copies of the rows it is read from (derived.py: those
    are exactly its rows; `<code>:identifier` tokens of a union from its parts' tokens)."""
    for res_type in sorted(registry().resource_types):
        for code, where in derivations(res_type).items():
            if where.target_type is not None:
                _copy(conn, search_reference, res_type, code, where)
                continue
            for name in _PARAMETER_TABLES:
                _copy(conn, INDEX_TABLES[name], res_type, code, where)
            tokens = IndexedAs(tuple(c + IDENTIFIER_SUFFIX for c in where.codes))
            _copy(conn, INDEX_TABLES["token"], res_type, code + IDENTIFIER_SUFFIX, tokens)


def _copy(conn: Connection, table: Any, res_type: str, code: str, where: IndexedAs) -> None:
    values = [table.c[c] for c in COLUMNS[table.name.removeprefix("search_")]]
    rows = select(table.c.res_pk, table.c.res_type, literal(code), *values).where(
        table.c.res_type == res_type,
        table.c.param.in_(where.codes),
        *([table.c.target_type == where.target_type] if where.target_type else []),
    )
    columns = ["res_pk", "res_type", "param", *(v.name for v in values)]
    conn.execute(insert(table).from_select(columns, rows.distinct()))


def _delete(conn: Connection, table: Any, res_type: str, codes: list[str]) -> int:
    result = conn.execute(
        delete(table).where(table.c.res_type == res_type, table.c.param.in_(codes))
    )
    return int(result.rowcount or 0)


def untyped_reference_holders(conn: Connection) -> list[int]:
    """Resources with a reference row of no target type: the rows whose type extraction now
    takes from the reference's declared `type` when its string names none."""
    ref = search_reference
    rows = conn.execute(
        select(ref.c.res_pk)
        .where(
            ref.c.target_type.is_(None),
            or_(ref.c.target_id.is_not(None), ref.c.target_url.is_not(None)),
        )
        .distinct()
    )
    return sorted(int(r[0]) for r in rows)


def reindex(conn: Connection, pks: Sequence[int], tables: Sequence[str] = tuple(COLUMNS)) -> None:
    """Replace the index rows of the current, not deleted resources `pks` with freshly
    extracted ones, in `tables` (names as in INDEX_TABLES; a migration names those that exist
    at its revision)."""
    for start in range(0, len(pks), _CHUNK):
        chunk = list(pks[start : start + _CHUNK])
        for name in tables:
            table = INDEX_TABLES[name]
            conn.execute(delete(table).where(table.c.res_pk.in_(chunk)))
        stored = conn.execute(
            select(resource.c.pk, resource.c.res_type, resource.c.content).where(
                and_(resource.c.pk.in_(chunk), resource.c.content.is_not(None))
            )
        )
        extracted = [(pk, t, _only(index_rows(_decoded(c)), tables)) for pk, t, c in stored]
        insert_index_rows(conn, extracted)


def _only(rows: IndexRows, tables: Sequence[str]) -> IndexRows:
    for name in COLUMNS:
        if name not in tables:
            setattr(rows, name, [])
    return rows


def _decoded(content: Any) -> dict[str, Any]:
    if isinstance(content, str | bytes):
        decoded: dict[str, Any] = orjson.loads(content)
        return decoded
    return dict(content)
