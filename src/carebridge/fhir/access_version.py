"""The version of the access data: a counter of changes to what policies read (ADR 0017).

A user's policy (search/policy_sql.py `_allowed`) is decided from three tables: the patients'
summary rows (`search_access`), their Consent rules (`search_consent`) and the reference rows of
the relationship resources that are not summarized per patient (`VERSIONED_LINK_TYPES`, in
`search_reference`). Triggers on those tables increment `access_version` (SQLite: its single
row; PostgreSQL: one of `SHARDS` rows, once per transaction) on every insert, update and
delete, inside the writing transaction: whatever path writes the rows
(a request, a load, a reindex, a migration), the counter changes with them, and a rolled-back
write rolls its increment back too. Two snapshots that read the same version therefore decide
every policy the same way (for the same policy time), which is what lets a set of visible
patients built in one snapshot be used in another (visible_patients.py).

The triggers are created by migration 0011 from `create_statements`; changing the tables or
types here needs a migration that drops and creates them again. A policy whose relationships
read another kind of reference row is not covered (`covers`) and never uses a set.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Integer,
    and_,
    bindparam,
    column,
    exists,
    func,
    select,
    table,
)

from carebridge.fhir.guard import KnownVisible, Relationship
from carebridge.fhir.search.access_links import SUMMARIZED

VERSIONED_LINK_TYPES = ("Encounter",)  # not summarized: their reference rows are versioned
_TABLE = "access_version"
_WHOLE_TABLES = ("search_access", "search_consent")

access_version = table(_TABLE, column("value"))


def current_version() -> Any:
    """The version, as a scalar subquery: read in the snapshot of the statement it is part of
    (the sum of the counter's rows: one on SQLite, `SHARDS` on PostgreSQL)."""
    return select(func.sum(access_version.c.value)).scalar_subquery()


def read_version(conn: Connection) -> tuple[int, bool]:
    """The version in the snapshot of a statement of its own (SQLite outside a transaction,
    PostgreSQL at READ COMMITTED) or of the transaction, and whether that snapshot's access
    data are committed data only, so a set may be built from it (SQLite: no transaction
    open; PostgreSQL: this transaction has not changed access data, `_FLAG`). On the DB-API
    cursor: SQLAlchemy's execution costs about ten times the statement."""
    dbapi: Any = conn.connection.dbapi_connection
    cursor = dbapi.cursor()
    try:
        if conn.dialect.name == "sqlite":
            version = cursor.execute(_READ).fetchone()[0]
            return int(version), not dbapi.in_transaction
        cursor.execute(_READ_PG)
        version, clean = cursor.fetchone()
        return int(version), bool(clean)
    finally:
        cursor.close()


_READ = f"SELECT sum(value) FROM {_TABLE}"
_READ_PG = (
    "SELECT sum(value), txid_current_if_assigned() IS NULL OR current_setting("
    f"'carebridge.access_changed', true) IS DISTINCT FROM txid_current_if_assigned()::text "
    f"FROM {_TABLE}"
)


@lru_cache(maxsize=64)
def covers(relationships: tuple[Relationship, ...]) -> bool:
    """Whether the counter changes with every row a policy with these relationships reads."""
    return all(r in SUMMARIZED or r.res_type in VERSIONED_LINK_TYPES for r in relationships)


_BUMP = f"BEGIN UPDATE {_TABLE} SET value = value + 1; END"


def _trigger_names() -> list[tuple[str, str, str, str]]:
    """(name, event, table, WHEN clause or "") of every trigger."""
    found = []
    for name in _WHOLE_TABLES:
        for event in ("INSERT", "UPDATE", "DELETE"):
            found.append((f"{_TABLE}_{name}_{event.lower()}", event, name, ""))
    types = ", ".join(f"'{t}'" for t in VERSIONED_LINK_TYPES)
    on = {
        "INSERT": f"NEW.res_type IN ({types})",
        "UPDATE": f"OLD.res_type IN ({types}) OR NEW.res_type IN ({types})",
        "DELETE": f"OLD.res_type IN ({types})",
    }
    for event, when in on.items():
        found.append(
            (f"{_TABLE}_search_reference_{event.lower()}", event, "search_reference", when)
        )
    return found


def create_statements(dialect: str = "sqlite") -> list[str]:
    """DDL: the counter's table, its rows, and the triggers."""
    if dialect == "postgresql":
        return _create_postgresql()
    statements = [
        f"CREATE TABLE {_TABLE} (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL)",
        # from a random value: a table created again (a downgrade and upgrade under a running
        # server) does not repeat the versions of the one it replaces
        f"INSERT INTO {_TABLE} (id, value) VALUES (1, abs(random() % 4611686018427387904))",
    ]
    for name, event, on_table, when in _trigger_names():
        condition = f" WHEN {when}" if when else ""
        statements.append(
            f"CREATE TRIGGER {name} AFTER {event} ON {on_table} FOR EACH ROW{condition} {_BUMP}"
        )
    return statements


def drop_statements(dialect: str = "sqlite") -> list[str]:
    if dialect == "postgresql":
        return [
            *(f"DROP TRIGGER {name} ON {on_table}" for name, _, on_table, _ in _trigger_names()),
            f"DROP FUNCTION {_BUMP_FUNCTION}()",
            f"DROP TABLE {_TABLE}",
        ]
    return [f"DROP TRIGGER {name}" for name, *_ in _trigger_names()] + [f"DROP TABLE {_TABLE}"]


# PostgreSQL: writers run concurrently, and a transaction that increments a row holds its lock
# until it commits. Each transaction increments once (a transaction-local setting marks it),
# one of `SHARDS` rows chosen by its backend, so concurrent writers rarely wait on each other;
# the version is the rows' sum, which counts the committed transactions that changed access
# data, and two snapshots that see the same count see the same ones (a snapshot sees every
# transaction committed before it, and none after).
SHARDS = 16
_BUMP_FUNCTION = "access_version_bump"
_FLAG = "carebridge.access_changed"


def _create_postgresql() -> list[str]:
    statements = [
        f"CREATE TABLE {_TABLE} (id INTEGER PRIMARY KEY, value BIGINT NOT NULL)",
        f"INSERT INTO {_TABLE} (id, value) SELECT s, 0 FROM generate_series(0, {SHARDS - 1}) s",
        f"UPDATE {_TABLE} SET value = floor(random() * 4e18)::bigint WHERE id = 0",
        f"""CREATE FUNCTION {_BUMP_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('{_FLAG}', true) IS DISTINCT FROM txid_current()::text THEN
        UPDATE {_TABLE} SET value = value + 1 WHERE id = pg_backend_pid() % {SHARDS};
        PERFORM set_config('{_FLAG}', txid_current()::text, true);
    END IF;
    RETURN NULL;
END $$""",
    ]
    for name, event, on_table, when in _trigger_names():
        condition = f" WHEN ({when})" if when else ""
        statements.append(
            f"CREATE TRIGGER {name} AFTER {event} ON {on_table} FOR EACH ROW{condition} "
            f"EXECUTE FUNCTION {_BUMP_FUNCTION}()"
        )
    return statements


# -- sets of visible patients (visible_patients.py) -----------------------------------------------
# One TEMP table per connection: the sets materialized on it, each a (set_id, patient) range.
VISIBLE_TABLE = "visible_patients"
_VISIBLE_COLUMNS = (
    "(set_id INTEGER NOT NULL, patient_id TEXT NOT NULL, PRIMARY KEY (set_id, patient_id))"
)
CREATE_VISIBLE = {
    "sqlite": f"CREATE TEMP TABLE IF NOT EXISTS {VISIBLE_TABLE} {_VISIBLE_COLUMNS} WITHOUT ROWID",
    "postgresql": f"CREATE TEMP TABLE IF NOT EXISTS {VISIBLE_TABLE} {_VISIBLE_COLUMNS}",
}
# unqualified: both databases look a name up among the connection's temporary tables first
visible_patients = table(VISIBLE_TABLE, column("set_id"), column("patient_id"))
KNOWN_SET, KNOWN_VERSION = "known_set", "known_version"  # their bound parameters


def in_known_set(known: KnownVisible, patient: ColumnElement[str]) -> ColumnElement[bool]:
    """`patient` is in the set, and the statement's snapshot is at the set's version (else the
    set may be stale and says nothing). The version subquery is uncorrelated: the database
    reads it once per statement."""
    rows = visible_patients.alias("known_visible")
    return and_(
        current_version() == bindparam(KNOWN_VERSION, known.version, type_=BigInteger()),
        exists().where(
            rows.c.set_id == bindparam(KNOWN_SET, known.set_id, type_=Integer()),
            rows.c.patient_id == patient,
        ),
    )
