"""Sets of the patients whose data of a type a policy lets its user see (ADR 0017).

A search under a user's policy decides each candidate row from the patient's facts, with
correlated lookups (search/policy_sql.py): 1 to 2.5 µs per candidate on SQLite (as much as the
search's own work), about 10 µs on PostgreSQL. Within one version of the access data
(access_version.py) and one policy (its minute included) the answer per patient and type does
not change, so after a policy has been used for a type at a version (`BUILD_AFTER` requests)
the set of the patients whose data of that type it lets its user see is built once, by that
same per-row SQL
(`policy_sql.allowed_of_type`; one statement, one snapshot, which also gives the version), kept
in the process, and materialized per connection in a TEMP table. A search of that type asks the
set first (`access_version.in_known_set`) and the per-row policy only for the candidates not in
it; a read of that type looks its row's patients up in the set.

Safety does not depend on this module noticing changes: the statement that uses a set compares
the set's version with the one in its own snapshot, and where they differ the set says nothing
and every row is decided per row as without it. Sets are built only from committed access
data (`access_version.read_version`: SQLite outside a transaction, PostgreSQL while the
transaction has not changed access data); otherwise a set the connection holds already may
still be used, under the same version check. SQLite commits a set's rows in their own
transaction; PostgreSQL inserts them in the request's, and forgets them if it rolls back.

A set starts from the patients the summary rows link to the user's actors or whose rules name
them (`policy_sql.set_candidates`); patients related only by kinds not summarized per patient
(Encounter) stay per row. A set larger than `MAX_SET` is not kept (a payer's whole
membership): such a policy stays per row. Searches of several types at once stay per row.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Connection, Engine, event, func, select

from carebridge.fhir.access_version import (
    CREATE_VISIBLE,
    VISIBLE_TABLE,
    covers,
    current_version,
    read_version,
)
from carebridge.fhir.guard import KnownVisible, PatientPolicy
from carebridge.fhir.search.derived import compartment_index_params
from carebridge.fhir.search.policy_sql import allowed_of_type, set_candidates
from carebridge.fhir.tables import search_consent

BUILD_AFTER = 2  # requests of a policy at one version before its set is built
MAX_SET = 20_000  # patients; a larger set is not kept
KEPT = 32  # sets kept per engine (least recently used dropped)


@dataclass
class _Entry:
    version: int
    uses: int = 0  # requests at `version` while no set was built
    built: tuple[int, frozenset[str]] | None = None  # (set id, patients), once built
    # the policy times the set holds for (naive UTC, as the rules are stored): from the time it
    # was built at, while no Consent rule starts or ends (`_boundaries`)
    since: datetime | None = None
    next_start: datetime | None = None  # the first start of a rule after `since`
    first_end: datetime | None = None  # the first end of a rule at or after `since`

    def holds_at(self, at: datetime) -> bool:
        """Whether the set built is the one the policy at `at` gives (at this version)."""
        return (
            self.built is not None
            and self.since is not None
            and self.since <= at
            and (self.next_start is None or at < self.next_start)
            and (self.first_end is None or at <= self.first_end)
        )


class VisibleSet(NamedTuple):
    """A built set, for a read: believed only by a statement that reads `version`."""

    version: int
    patients: frozenset[str]


_ids = itertools.count(1)
_lock = threading.Lock()
_Key = tuple[PatientPolicy, str]  # a policy without its time (`_asked`) and a type
_Sets = OrderedDict[_Key, _Entry]
_by_engine: weakref.WeakKeyDictionary[Engine, _Sets] = weakref.WeakKeyDictionary()
# the same by the engine's id, read without the lock (checked against the engine itself)
_sets_of: dict[int, tuple[weakref.ref[Engine], _Sets]] = {}


def known_visible(conn: Connection, policy: PatientPolicy, res_type: str) -> KnownVisible | None:
    """The set of the patients whose `res_type` data `policy` lets its user see, to use on
    `conn` for a search's statements, built or materialized here when due; None when there is
    none (then the policy is decided per row)."""
    found = _looked_up(conn, policy, res_type)
    if found is None:
        return None
    sets, key, at, entry = found
    version, clean = read_version(conn)
    if not clean:  # own writes may be in the snapshot: only a set held already, if current
        return _already_held(conn, entry, res_type, at, version)
    built = _current(conn, sets, key, entry, version, policy)
    if built is None:
        return None
    set_id, patients = built[1]
    if set_id not in _materialized(conn):
        _materialize(conn, set_id, patients, _live_ids(sets))
    return KnownVisible(set_id, built[0], res_type)


def visible_set(conn: Connection, policy: PatientPolicy, res_type: str) -> VisibleSet | None:
    """The set of the patients whose `res_type` data `policy` lets its user see, for a read,
    which checks its version in the statement that reads the row (then `saw_version`): the
    set as last built, without I/O; when there is none, built here when due (as for a
    search)."""
    found = _looked_up(conn, policy, res_type)
    if found is None:
        return None
    sets, key, at, entry = found
    if entry is not None and entry.built is not None and entry.holds_at(at):
        return VisibleSet(entry.version, entry.built[1])
    version, clean = read_version(conn)
    if not clean:
        return None
    built = _current(conn, sets, key, entry, version, policy)
    return None if built is None else VisibleSet(built[0], built[1][1])


def saw_version(
    conn: Connection, policy: PatientPolicy, res_type: str, seen: VisibleSet, version: int
) -> None:
    """A read under `policy` found the access data at `version`, not at the version of the
    set `seen` it was given: the set is left for one built when due at `version`."""
    asked = _asked(policy, res_type)
    if asked is None:
        return
    sets, key = _sets(conn.engine), asked[0]
    with _lock:
        entry = sets.get(key)
        if entry is not None and entry.version == seen.version and version != seen.version:
            sets[key] = _Entry(version, uses=1)


def _looked_up(
    conn: Connection, policy: PatientPolicy, res_type: str
) -> tuple[_Sets, _Key, datetime, _Entry | None] | None:
    """The engine's sets, the key of `policy` and `res_type` among them, the policy's time as
    the rules' times are stored, and the entry kept for the key; None when no set is kept for
    them."""
    asked = _asked(policy, res_type)
    if asked is None:
        return None
    key, at = asked
    sets = _sets(conn.engine)
    return sets, key, at, _entry(sets, key)


@lru_cache(maxsize=1024)
def _asked(policy: PatientPolicy, res_type: str) -> tuple[_Key, datetime] | None:
    """The key of the set for `policy` and `res_type` (the policy without its time: a set is
    kept across the policy's minutes, `holds_at`) and the policy's time as the rules' times
    are stored (naive UTC); None when no set is kept for them. Cached: a read asks on every
    request (6.4 -> 3.6 µs per call)."""
    if policy.override or not policy.actors or res_type in policy.hidden_types:
        return None
    if res_type != "Patient" and res_type not in compartment_index_params():
        return None  # not patient data: the policy is a condition on the type alone
    if not covers(policy.relationships):
        return None
    return (replace(policy, at=_NO_TIME), res_type), _naive(policy.at)


def _entry(sets: _Sets, key: _Key) -> _Entry | None:
    """The entry of `key`, marked as recently used (unlocked: a dict's `get` is atomic; an
    entry dropped meanwhile is only built again)."""
    entry = sets.get(key)
    if entry is not None and entry.uses % 64 == 0:  # now and then: reordering takes the lock
        with _lock:
            if key in sets:
                sets.move_to_end(key)
    if entry is not None and entry.built is not None:
        entry.uses += 1
    return entry


def _current(
    conn: Connection,
    sets: _Sets,
    key: _Key,
    entry: _Entry | None,
    version: int,
    policy: PatientPolicy,
) -> tuple[int, tuple[int, frozenset[str]]] | None:
    """(version, (set id, patients)) of the set for `policy` at `version`, built when due;
    else None (counting this request as a use at `version`)."""
    at = _naive(policy.at)
    stale = entry is not None and entry.built is not None and not entry.holds_at(at)
    if entry is None or entry.version != version or stale:
        entry = _Entry(version)
        with _lock:
            sets[key] = entry
            while len(sets) > KEPT:
                sets.popitem(last=False)
    built = entry.built
    if built is None:
        entry.uses += 1
        if entry.uses < BUILD_AFTER or (built := _build(conn, policy, key[1], entry)) is None:
            return None
    return entry.version, built


def _already_held(
    conn: Connection, entry: _Entry | None, res_type: str, at: datetime, version: int
) -> KnownVisible | None:
    """With writes of the connection's own pending: the set the connection holds already, if
    it holds at `at` and is of the `version` the transaction sees."""
    if entry is None or entry.built is None or entry.built[0] not in _materialized(conn):
        return None
    if not entry.holds_at(at) or version != entry.version:
        return None
    return KnownVisible(entry.built[0], entry.version, res_type)


def _sets(engine: Engine) -> _Sets:
    found = _sets_of.get(id(engine))
    if found is not None and found[0]() is engine:
        return found[1]
    with _lock:
        sets = _by_engine.get(engine)
        if sets is None:
            sets = _by_engine[engine] = OrderedDict()
        for stale in [k for k, (ref, _) in _sets_of.items() if ref() is None]:
            del _sets_of[stale]
        _sets_of[id(engine)] = (weakref.ref(engine), sets)
        return sets


def _live_ids(sets: _Sets) -> set[int]:
    with _lock:
        return {e.built[0] for e in sets.values() if e.built is not None}


def _build(
    conn: Connection, policy: PatientPolicy, res_type: str, entry: _Entry
) -> tuple[int, frozenset[str]] | None:
    """Build `entry`'s set for `policy` at its time: the version, the patients and the next
    times a Consent rule starts or ends from one statement (one snapshot). None when the set
    is larger than MAX_SET (kept as not built, so not tried again at this version) or when
    the build's version is not the entry's (changed meanwhile)."""
    candidates = set_candidates(policy)
    if candidates is None:
        return None
    candidate = candidates.subquery("candidate")
    sqlite = conn.dialect.name == "sqlite"
    statement = select(
        current_version(),
        (func.json_group_array if sqlite else func.array_agg)(candidate.c.patient_id),
        *_boundaries(policy),
    ).where(allowed_of_type(policy, candidate.c.patient_id, res_type))
    version, patients, next_start, first_end = conn.execute(statement).one()
    listed: list[str] = orjson.loads(patients) if sqlite else list(patients or ())
    if int(version) != entry.version or len(listed) > MAX_SET:
        entry.uses = -(1 << 30)  # not again at this version
        return None
    entry.since, entry.next_start, entry.first_end = _naive(policy.at), next_start, first_end
    entry.built = (next(_ids), frozenset(listed))
    return entry.built


def _boundaries(policy: PatientPolicy) -> tuple[Any, Any]:
    """The first start of a Consent rule after the policy's time, and the first end at or
    after it (scalar subqueries): until then, every rule in force at that time still is, and
    no other is (a rule is in force at `at` when `start <= at <= end`, policy_sql.py)."""
    rule = search_consent.alias("boundary")
    rules = (rule.c.res_type == "Consent", rule.c.param == "rule")
    next_start = select(func.min(rule.c.start)).where(*rules, rule.c.start > policy.at)
    first_end = select(func.min(rule.c.end)).where(*rules, rule.c.end >= policy.at)
    return next_start.scalar_subquery(), first_end.scalar_subquery()


_NO_TIME = datetime(1970, 1, 1, tzinfo=UTC)


def _naive(at: datetime) -> datetime:
    """`at` as the rules' times are stored and compared on SQLite: naive UTC."""
    return at if at.tzinfo is None else at.astimezone(UTC).replace(tzinfo=None)


def _materialized(conn: Connection) -> set[int]:
    """The set ids whose rows this connection's TEMP table holds (reset with a new DB-API
    connection: the table lives and dies with it)."""
    info: dict[str, Any] = conn.info
    dbapi = conn.connection.dbapi_connection
    held = info.get(VISIBLE_TABLE)
    if held is None or held[0] is not dbapi:
        held = info[VISIBLE_TABLE] = (dbapi, set())
    ids: set[int] = held[1]
    return ids


def _materialize(conn: Connection, set_id: int, patients: frozenset[str], live: set[int]) -> None:
    """Insert the set's rows into the connection's TEMP table, dropping sets no longer kept.
    SQLite: then commit (the caller checked that no transaction is open, so the commit ends
    nothing of the request's; a TEMP table takes no lock on the database file). PostgreSQL:
    in the request's transaction; if it rolls back, so do the rows, and the connection is
    marked as holding none (`_forget_on_rollback`)."""
    dbapi: Any = conn.connection.dbapi_connection
    held = _materialized(conn)
    stale = sorted(held - live)
    cursor = dbapi.cursor()
    try:
        if conn.dialect.name == "sqlite":
            cursor.execute(CREATE_VISIBLE["sqlite"])
            cursor.executemany(
                f"DELETE FROM {VISIBLE_TABLE} WHERE set_id = ?", [(s,) for s in stale]
            )
            cursor.executemany(
                f"INSERT OR IGNORE INTO {VISIBLE_TABLE} (set_id, patient_id) VALUES (?, ?)",
                [(set_id, p) for p in patients],
            )
            dbapi.commit()
        else:
            _forget_on_rollback(conn.engine)
            cursor.execute(CREATE_VISIBLE["postgresql"])
            cursor.execute(f"DELETE FROM {VISIBLE_TABLE} WHERE set_id = ANY(%s)", (stale,))
            cursor.execute(
                f"INSERT INTO {VISIBLE_TABLE} (set_id, patient_id) "
                "SELECT %s, unnest(%s::text[]) ON CONFLICT DO NOTHING",
                (set_id, list(patients)),
            )
    finally:
        cursor.close()
    held.difference_update(stale)
    held.add(set_id)


def _forget_on_rollback(engine: Engine) -> None:
    """On PostgreSQL a set's rows live in the transaction that inserted them until it commits:
    when a transaction (or a savepoint) rolls back, the connection is marked as holding no set
    (`_materialized`), so the next search inserts them again."""
    if not event.contains(engine, "rollback", _forget):
        event.listen(engine, "rollback", _forget)
        event.listen(engine, "rollback_savepoint", _forget)


def _forget(conn: Connection, *_: Any) -> None:
    conn.info.pop(VISIBLE_TABLE, None)
