"""Secondary indexes that an initial bulk load builds once at the end instead of row by row.

Each index row goes into a search table's lookup index (`(res_type, param, value...)`) in no
useful order, so on a growing store every insert is a random B-tree descent; building the index
once from the finished table is a sort. Loading 200,000 resources into an empty SQLite store:
2,810 resources/s with the indexes kept, 3,858/s without them plus 4 s to build them at the end
(bench/README.md). The indexes that identify rows (`uq_resource_type_id`, `ix_search_*_res`) are
kept: loads need them to find existing resources and replace their index rows. So are the
resource table's time indexes: a load stamps its rows in time order, so their entries are
appended (rebuilding them at the end took longer than keeping them).

While the indexes are dropped, searches from other sessions are slow but correct. If the process
dies before rebuilding them, `ensure_indexes` (run by every schema upgrade, so by `carebridge
load`, `carebridge serve` and `carebridge db upgrade`) creates whatever is missing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, Index, func, inspect, select

from carebridge.fhir.tables import INDEX_TABLES, resource, resource_history

DEFER_FROM = 50_000
SORT_THREADS = 4  # at most, for SQLite's index builds


def worth_deferring(engine: Engine, incoming: int) -> bool:
    """An initial load: at least DEFER_FROM resources, more than the store holds."""
    if incoming < DEFER_FROM:
        return False
    with engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(resource)).scalar_one()
    return incoming > int(stored)


def deferrable_indexes() -> list[Index]:
    found: list[Index] = []
    for table in INDEX_TABLES.values():
        found.extend(i for i in table.indexes if i.name and i.name.endswith("_lookup"))
    return sorted(found, key=lambda i: str(i.name))


@contextmanager
def deferred_indexes(engine: Engine, enabled: bool = True) -> Iterator[None]:
    """Run a load with the lookup indexes dropped, and build them once afterwards (also when
    the load fails; if the process dies, the next schema upgrade builds them)."""
    if not enabled:
        yield
        return
    drop_deferrable(engine)
    try:
        yield
    finally:
        ensure_indexes(engine)


def drop_deferrable(engine: Engine) -> None:
    """Drop the lookup indexes (those present) before a large load."""
    present = _present(engine)
    with engine.begin() as conn:
        for index in deferrable_indexes():
            if index.name in present:
                index.drop(conn)


def ensure_indexes(engine: Engine) -> list[str]:
    """Create every index of the FHIR tables that is missing; the names created.

    On SQLite the index sorts may use helper threads (`PRAGMA threads`,
    https://www.sqlite.org/pragma.html#pragma_threads), one per core: building the lookup
    indexes of 200,000 dispensing rows (about 3.4M index rows) took 5.5 -> 4.6 s with two."""
    present = _present(engine)
    created = []
    with engine.begin() as conn, _sort_threads(conn):
        for table in (resource, resource_history, *INDEX_TABLES.values()):
            for index in sorted(table.indexes, key=lambda i: str(i.name)):
                if index.name not in present:
                    index.create(conn)
                    created.append(str(index.name))
    return created


@contextmanager
def _sort_threads(conn: Connection) -> Iterator[None]:
    if conn.dialect.name != "sqlite":
        yield
        return
    conn.exec_driver_sql(f"PRAGMA threads={min(os.cpu_count() or 1, SORT_THREADS)}")
    try:
        yield
    finally:
        conn.exec_driver_sql("PRAGMA threads=0")


def _present(engine: Engine) -> set[str]:
    inspector = inspect(engine)
    names: set[str] = set()
    for table in (resource, resource_history, *INDEX_TABLES.values()):
        if inspector.has_table(table.name):
            names.update(str(i["name"]) for i in inspector.get_indexes(table.name))
    return names
