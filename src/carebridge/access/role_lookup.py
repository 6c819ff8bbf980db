"""Read a user's role from the FHIR data its `fhirUser` points at (roles.py has the rules)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, NamedTuple
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine, and_, func, or_, select

from carebridge.access.roles import (
    EMERGENCY_TREAT,
    OPERATIONS,
    PAYMENT,
    PAYMENT_LINKS,
    TREAT,
    TREATMENT_LINKS,
    Role,
    is_payer,
    practitioner_actors,
)
from carebridge.fhir.driver_select import driver_rows
from carebridge.fhir.search.inline import inline
from carebridge.fhir.search.param_sql import param_rows
from carebridge.fhir.search.parse import parse_search
from carebridge.fhir.search.values import local_reference
from carebridge.fhir.store import FhirStore
from carebridge.fhir.tables import resource, search_reference
from carebridge.kit.changes import watch
from carebridge.kit.clock import minute_of

_MAX_ROLES = 200
_ROLE_DATA = ("PractitionerRole", "CareTeam", "Organization", "Practitioner")
_ROLE_WRITES = watch(_ROLE_DATA)  # this process's writes of role data
_MISS: tuple[bool, Role | None] = (False, None)


class ConsentDefaults(NamedTuple):
    """Deployment choice per purpose (docs/security.md): opt-in shares a patient's data only
    under a Consent that permits it; opt-out shares it with the care team unless denied. A
    named tuple: it is part of the role cache's key, hashed on every request."""

    treatment_opt_in: bool = False
    payment_opt_in: bool = True


def resolve_role(
    conn: Connection, fhir_user: str, defaults: ConsentDefaults, at: datetime
) -> Role | None:
    """The role of a user (None for a patient or an unreadable reference)."""
    key = local_reference(fhir_user)
    if key is None or key[0] == "Patient":
        return None
    store = FhirStore(conn)
    rtype, rid = key
    if rtype in ("Practitioner", "PractitionerRole"):
        actors = practitioner_actors(key, _practitioner_roles(store, key), at)
        return Role(
            "clinician",
            actors | _care_teams(conn, actors),
            (TREAT, EMERGENCY_TREAT),
            TREATMENT_LINKS,
            defaults.treatment_opt_in,
        )
    if rtype == "Organization":
        found = store.find("Organization", rid)
        if found is not None and is_payer(found.content):
            return Role("payer", frozenset({key}), (PAYMENT, OPERATIONS), PAYMENT_LINKS, True)
        actors = frozenset({key})
        return Role(
            "provider-organization",
            actors | _care_teams(conn, actors),
            (TREAT,),
            TREATMENT_LINKS,
            defaults.treatment_opt_in,
        )
    return Role("related-person", frozenset({key}), (TREAT,), (), True)


def _practitioner_roles(store: FhirStore, key: tuple[str, str]) -> list[dict[str, Any]]:
    if key[0] == "PractitionerRole":
        found = store.find(*key)
        return [found.content] if found is not None and found.content else []
    query = parse_search(
        ["PractitionerRole"], [("practitioner", f"Practitioner/{key[1]}"), ("_count", "200")]
    )
    page = store.search(query)
    return [m.content for m in page.matches[:_MAX_ROLES] if m.content]


def _care_teams(conn: Connection, actors: frozenset[tuple[str, str]]) -> frozenset[tuple[str, str]]:
    """CareTeams any of `actors` takes part in: a consent or relationship may name the team."""
    ref = search_reference
    by_type: dict[str, list[str]] = {}
    for rtype, rid in actors:
        by_type.setdefault(rtype, []).append(rid)
    rows = conn.execute(
        select(resource.c.res_id)
        .join(ref, ref.c.res_pk == resource.c.pk)
        .where(
            ref.c.res_type == "CareTeam",
            param_rows(ref, "CareTeam", "participant"),
            or_(
                *(and_(ref.c.target_type == t, ref.c.target_id.in_(i)) for t, i in by_type.items())
            ),
            resource.c.deleted.is_(False),
        )
        .limit(_MAX_ROLES)
    )
    return frozenset(("CareTeam", r.res_id) for r in rows)


RECHECK_SECONDS = 1.0


class RoleCache:
    """Roles per user, valid while the data they are read from is unchanged.

    A role costs a few queries; every request needs one. The cache key includes the newest
    `last_updated` of PractitionerRole, CareTeam, Organization and Practitioner resources (one
    indexed lookup per type, the watermark), so any change to that data (deletes included: they
    bump `last_updated`) is seen. The watermark itself is read again when this process has
    written any of those types since (kit/changes.py), else at most every `RECHECK_SECONDS`: a
    change made by another process (another server worker, `carebridge load`) reaches a role
    within that time; one made by this process, at the next request.
    """

    def __init__(self, size: int = 1024, recheck_seconds: float = RECHECK_SECONDS) -> None:
        self._size = size
        self._recheck = recheck_seconds
        self._lock = threading.Lock()
        self._roles: OrderedDict[tuple[Any, ...], Role | None] = OrderedDict()
        self._checked: dict[Any, tuple[tuple[Any, ...], float, int]] = {}  # url -> last look

    def known(
        self, engine: Engine, fhir_user: str, defaults: ConsentDefaults, at: datetime
    ) -> tuple[bool, Role | None]:
        """(True, the cached role) if the watermark was read recently and this process wrote no
        role data since; else (False, None): call `get` with a connection."""
        database = _database(engine)
        checked = self._checked.get(database)
        if checked is None:
            return _MISS
        watermark, when, writes = checked
        if _ROLE_WRITES.value != writes or time.monotonic() - when > self._recheck:
            return _MISS
        key = _key(database, fhir_user, defaults, at, watermark)
        with self._lock:
            try:
                self._roles.move_to_end(key)  # a hit is the usual case: two lookups of the key
            except KeyError:
                return _MISS
            return True, self._roles[key]

    def get(
        self, conn: Connection, fhir_user: str, defaults: ConsentDefaults, at: datetime
    ) -> Role | None:
        writes = _ROLE_WRITES.value  # before the read: a write after it is seen next time
        watermark = _watermark(conn)
        database = _database(conn.engine)
        key = _key(database, fhir_user, defaults, at, watermark)
        with self._lock:
            self._checked[database] = (watermark, time.monotonic(), writes)
            if key in self._roles:
                self._roles.move_to_end(key)
                return self._roles[key]
        role = resolve_role(conn, fhir_user, defaults, at)
        with self._lock:
            self._roles[key] = role
            while len(self._roles) > self._size:
                self._roles.popitem(last=False)
        return role


_DATABASES: WeakKeyDictionary[Engine, str] = WeakKeyDictionary()


def _database(engine: Engine) -> str:
    """The engine's database as text, computed once per engine: hashing a SQLAlchemy URL renders
    it again each time (a third of a cached role lookup)."""
    found = _DATABASES.get(engine)
    if found is None:
        found = _DATABASES[engine] = engine.url.render_as_string(hide_password=False)
    return found


def _key(
    url: Any, fhir_user: str, defaults: ConsentDefaults, at: datetime, watermark: Any
) -> tuple[Any, ...]:
    minute = minute_of(at)  # role periods are checked each minute
    return (url, fhir_user, defaults, minute, watermark)


_WATERMARK = select(
    *(
        select(func.max(resource.c.last_updated))
        .where(resource.c.res_type == inline(t))
        .scalar_subquery()
        for t in _ROLE_DATA
    )
)  # constants in the text: PostgreSQL plans the prepared statement once (inline.py)


def _watermark(conn: Connection) -> tuple[Any, ...]:
    with driver_rows(conn, _WATERMARK, {}) as rows:  # every request: no SQLAlchemy overhead
        return tuple(next(rows))


@contextmanager
def role_reading(engine: Engine) -> Iterator[Connection]:
    """A connection to read roles with, before the request's transaction. On PostgreSQL in
    autocommit: no BEGIN and COMMIT round trips, and the pool's ROLLBACK on return has no
    transaction to end (psycopg forgets a connection's prepared statements on ROLLBACK, and
    the request's statements after it would be planned again each time). SQLite reads outside
    a transaction anyway, and switching it to autocommit and back costs a PRAGMA."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn
