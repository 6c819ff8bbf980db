"""The FHIR store: reads, searches, history and compartments over one connection (one transaction).

All SQL for resources runs here, in `writer.py` and in `bulk_load.py`; statements are built by
`search/sql.py`. Callers own the transaction (one request = one transaction, ADR 0004).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    String,
    and_,
    bindparam,
    false,
    func,
    literal,
    or_,
    select,
    true,
    union_all,
)

from carebridge.fhir.driver_select import driver_row
from carebridge.fhir.guard import UNRESTRICTED, AccessScope, PatientPolicy
from carebridge.fhir.patient_policy import patient_allowed_types, read_decided, visible_rows
from carebridge.fhir.records import (
    HistoryPage,
    Method,
    Outcome,
    SearchPage,
    StoredResource,
    WriteOp,
    WriteResult,
)
from carebridge.fhir.search.derived import compartment_index_params
from carebridge.fhir.search.param_sql import param_rows
from carebridge.fhir.search.query import Include, SearchQuery, pinned_patient
from carebridge.fhir.search.results import (
    count_statement,
    keys_statement,
    only_rows,
    page_statement,
)
from carebridge.fhir.search.sql import Compiled, compile_query, scope_conditions
from carebridge.fhir.tables import resource, resource_history, search_reference, urn_alias
from carebridge.fhir.visible_patients import known_visible
from carebridge.fhir.writer import BatchWriter, existing_rows, group_ids_by_type
from carebridge.kit.errors import ForbiddenError, GoneError, NotFoundError

_MAX_INCLUDED = 5_000
KEYED_UP_TO = 1_000  # visible matches of a search under a policy answered from their keys
_ITERATE_DEPTH = 3


# Built once: SQLAlchemy keeps a statement's cache key with it, so a read does not compute it
# again (a new `select` per read cost about 30 µs of a 0.2 ms read on SQLite).
_FIND = select(resource).where(
    resource.c.res_type == bindparam("res_type", type_=String()),
    resource.c.res_id == bindparam("res_id", type_=String()),
)


def _stored(row: Row[Any]) -> StoredResource:
    return StoredResource(**row._mapping)


class FhirStore:
    """One transaction's view of the store; every read and search stays within `scope`."""

    def __init__(
        self, conn: Connection, base_url: str = "", scope: AccessScope = UNRESTRICTED
    ) -> None:
        self.conn = conn
        self.base_url = base_url.rstrip("/")
        self.scope = scope

    def visible(self, res_type: str, res_id: str, pk: int | None = None) -> bool:
        """Whether the scope lets the caller see this resource (`pk`: its key, if known): the
        scope's conditions checked in SQL, a user's policy decided for the resource's patients
        (patient_policy.py)."""
        if self.scope.unrestricted:
            return True
        policy = self.scope.policy
        if pk is None or not self.scope.unrestricted_but_policy:
            rest = replace(self.scope, policy=None)
            statement = select(resource.c.pk).where(
                resource.c.res_type == res_type,
                resource.c.res_id == res_id,
                *scope_conditions(rest, [res_type]),
            )
            pk = self.conn.execute(statement).scalar()
        if pk is None or policy is None:
            return pk is not None
        return pk in visible_rows(self.conn, policy, [(pk, res_type, res_id)])

    # -- writes ---------------------------------------------------------------------------------
    def write(self, ops: Sequence[WriteOp], *, now: datetime | None = None) -> list[WriteResult]:
        """Write `ops`. Within a scope, a write must stay in the caller's view: what it replaces
        or deletes must be visible to them (else 404, as for a read) and what it leaves must be
        too (else 403); the caller's transaction then rolls back."""
        if not self.scope.unrestricted:
            current = existing_rows(self.conn, ((op.res_type, op.res_id) for op in ops))
            for found in current.values():
                if not self._visible_or_deleted(found):
                    raise NotFoundError(f"{found.res_type}/{found.res_id} is not known")
        results = BatchWriter(self.conn).write(ops, now=now)
        self._require_visible(r.stored for r in results)
        return results

    def write_many(
        self, ops: Sequence[WriteOp], *, now: datetime | None = None
    ) -> list[WriteResult]:
        """`write` for large batches that are mostly new (loads, feeds): the new resources are
        created by one insert-if-absent, without looking them up first, and only those that
        exist already go through `write` to be versioned. Same results, in the order of `ops`."""
        plain = [
            op
            for op in ops
            if op.method in (Method.PUT, Method.POST) and op.urn is None and op.if_match is None
        ]
        created = {(r.res_type, r.res_id): r for r in self.create_absent(plain, now=now)}
        rest = [op for op in ops if (op.res_type, op.res_id) not in created]
        written = (
            {(r.op.res_type, r.op.res_id): r for r in self.write(rest, now=now)} if rest else {}
        )
        return [
            WriteResult(op, Outcome.CREATED, created[key])
            if (key := (op.res_type, op.res_id)) in created
            else written[key]
            for op in ops
        ]

    def create_absent(
        self, ops: Sequence[WriteOp], *, now: datetime | None = None
    ) -> list[StoredResource]:
        """Create the resources of `ops` whose (type, id) is not stored yet; leave the others as
        they are. Returns what was created (version 1). Within a scope, what is created must be
        visible to the caller (else 403 and the transaction rolls back)."""
        if not ops:
            return []
        created = BatchWriter(self.conn).create_absent(ops, now=now)
        self._require_visible(created)
        return created

    def _require_visible(self, written: Iterable[StoredResource | None]) -> None:
        if self.scope.unrestricted:
            return
        for stored in written:
            if stored is None or stored.deleted:
                continue
            if not self.visible(stored.res_type, stored.res_id):
                raise ForbiddenError(
                    f"{stored.res_type}/{stored.res_id} would be outside what this "
                    "access token may see (patient context, role or Consent)"
                )

    # -- reads ----------------------------------------------------------------------------------
    def find(self, res_type: str, res_id: str) -> StoredResource | None:
        """The current row of `res_type`/`res_id`, deleted or not. On the DB-API cursor
        (driver_select.py): the most frequent statement there is."""
        row = driver_row(self.conn, _FIND, {"res_type": res_type, "res_id": res_id})
        return StoredResource(*row) if row else None

    def read(self, res_type: str, res_id: str) -> StoredResource:
        """The current version; 404 if never existed, 410 if deleted (R4 http.html#read)."""
        found, shown = self._find_shown(res_type, res_id)
        if found is None or not shown:
            raise NotFoundError(f"{res_type}/{res_id} is not known")
        if found.deleted:
            raise GoneError(f"{res_type}/{res_id} was deleted")
        return found

    def _find_shown(self, res_type: str, res_id: str) -> tuple[StoredResource | None, bool]:
        """The current row of `res_type`/`res_id` and whether the caller may be shown it (see
        `_visible_or_deleted`); under a user's policy alone, from one statement."""
        policy = self.scope.policy
        if policy is not None and self.scope.unrestricted_but_policy:
            decided = read_decided(self.conn, policy, res_type, res_id)
            if decided is not None:
                return decided
        found = self.find(res_type, res_id)
        return found, found is not None and self._visible_or_deleted(found)

    def _visible_or_deleted(self, found: StoredResource) -> bool:
        """Deleted resources lose their index rows; only an unrestricted caller sees them."""
        if found.deleted:
            return self.scope.unrestricted
        return self.visible(found.res_type, found.res_id, found.pk)

    def vread(self, res_type: str, res_id: str, version: int) -> StoredResource:
        current, shown = self._find_shown(res_type, res_id)
        if current is None or not shown:
            raise NotFoundError(f"{res_type}/{res_id} is not known")
        if current.version == version:
            stored = current
        else:
            row = self.conn.execute(
                select(resource_history).where(
                    resource_history.c.res_type == res_type,
                    resource_history.c.res_id == res_id,
                    resource_history.c.version == version,
                )
            ).first()
            if row is None:
                raise NotFoundError(f"{res_type}/{res_id} has no version {version}")
            stored = StoredResource(pk=current.pk, **row._mapping)
        if stored.deleted:
            raise GoneError(f"{res_type}/{res_id} version {version} is a deletion")
        return stored

    def fetch(self, keys: Iterable[tuple[str, str]]) -> list[StoredResource]:
        """Current, non-deleted resources for (type, id) keys, in no particular order."""
        found: list[StoredResource] = []
        for res_type, ids in group_ids_by_type(keys).items():
            for start in range(0, len(ids), 500):
                rows = self.conn.execute(
                    select(resource).where(
                        resource.c.res_type == res_type,
                        resource.c.res_id.in_(ids[start : start + 500]),
                        resource.c.deleted == false(),
                        *scope_conditions(self.scope, [res_type]),
                    )
                )
                found.extend(_stored(r) for r in rows)
        return found

    # -- search ---------------------------------------------------------------------------------
    def search(self, query: SearchQuery) -> SearchPage:
        compiled = self._compiled(query)
        want_total = query.summary == "count" or query.total != "none"
        total = self._total(compiled) if want_total else None
        if query.summary == "count":
            return SearchPage([], [], total)
        matches = [_stored(r) for r in self.conn.execute(page_statement(compiled, query))]
        included = self.included(matches, query.includes)
        return SearchPage(matches, included, total)

    def count(self, query: SearchQuery) -> int:
        return self._total(self._compiled(query))

    def _total(self, compiled: Compiled) -> int:
        if compiled.total is not None:
            return compiled.total
        return int(self.conn.execute(count_statement(compiled)).scalar_one())

    def _compiled(self, query: SearchQuery) -> Compiled:
        """`query` within the scope: a user's policy decided once for a pinned patient, else
        per row in SQL. With a policy, one statement decides it for every match and returns
        the keys of the visible ones; when there are at most `KEYED_UP_TO`, their number is
        the total and pages are read by key, so the policy is not decided again for the count
        and for the page."""
        scope = self._search_scope(query)
        if scope.policy is not None and len(query.resource_types) == 1:
            known = known_visible(self.conn, scope.policy, query.resource_types[0])
            scope = replace(scope, known=known)
        compiled = compile_query(query, self.base_url, scope)
        if scope.policy is None or KEYED_UP_TO < 0 or not _patient_data(query.resource_types):
            return compiled
        count, keys = self.conn.execute(keys_statement(compiled, KEYED_UP_TO + 1)).one()
        return compiled if count > KEYED_UP_TO else only_rows(compiled, keys, count)

    def _search_scope(self, query: SearchQuery) -> AccessScope:
        """The scope for `query`. A search pinned to one patient (`patient=X`, the pharmacist's
        everyday query) is decided once, here, instead of per candidate row: every row of the
        search is in X's compartment, so it runs as a search of X's compartment limited to the
        searched types the policy lets the user see of X (none: an empty result)."""
        policy = self.scope.policy
        patient = pinned_patient(query)
        if patient is None or self.scope.patient_id not in (None, patient):
            return self.scope
        types = self.scope.resource_types
        if policy is not None:
            allowed = self.allowed_types(policy, patient, query.resource_types)
            if not allowed.issuperset(query.resource_types):
                types = allowed if types is None else allowed & types
        # Every row matches the pinning criterion, so is in X's compartment already; the
        # scope's search restrictions still apply.
        return replace(self.scope, patient_id=None, policy=None, resource_types=types)

    def allowed_types(
        self, policy: PatientPolicy, patient: str, types: Iterable[str]
    ) -> frozenset[str]:
        """Those of `types` whose resources in `patient`'s compartment `policy` lets its user
        see, decided once for the patient (patient_policy.py), by the rules policy_sql.py
        applies per row."""
        return patient_allowed_types(self.conn, policy, patient, types)

    def included(
        self, matches: list[StoredResource], includes: Sequence[Include]
    ) -> list[StoredResource]:
        """_include and _revinclude targets of `matches` (search.html#include), each once."""
        seen = {(m.res_type, m.res_id) for m in matches}
        out: list[StoredResource] = []
        frontier = matches
        for depth in range(_ITERATE_DEPTH):
            active = [i for i in includes if depth == 0 or i.iterate]
            if not active or not frontier:
                break
            found = [r for inc in active for r in self._include_one(frontier, inc)]
            frontier = []
            for item in found:
                key = (item.res_type, item.res_id)
                if key not in seen and len(out) < _MAX_INCLUDED:
                    seen.add(key)
                    out.append(item)
                    frontier.append(item)
        return out

    def _include_one(self, frontier: list[StoredResource], inc: Include) -> list[StoredResource]:
        if inc.reverse:
            return self._revinclude(frontier, inc)
        pks = [r.pk for r in frontier if r.res_type == inc.source_type]
        if not pks:
            return []
        ref = search_reference
        conditions = [
            ref.c.res_pk.in_(pks),
            ref.c.res_type == inc.source_type,
            self._on_this_server(),
        ]
        if inc.param != "*":
            conditions.append(param_rows(ref, inc.source_type, inc.param))
        if inc.target_type:
            conditions.append(ref.c.target_type == inc.target_type)
        targets = self.conn.execute(select(ref.c.target_type, ref.c.target_id).where(*conditions))
        return self.fetch((t, i) for t, i in targets if t and i)

    def _revinclude(self, frontier: list[StoredResource], inc: Include) -> list[StoredResource]:
        ref = search_reference
        keys = [(r.res_type, r.res_id) for r in frontier]
        if inc.target_type:
            keys = [k for k in keys if k[0] == inc.target_type]
        if not keys:
            return []
        statement = (
            select(resource)
            .join(ref, ref.c.res_pk == resource.c.pk)
            .where(
                ref.c.res_type == inc.source_type,
                param_rows(ref, inc.source_type, inc.param) if inc.param != "*" else true(),
                or_(
                    *(
                        and_(ref.c.target_type == t, ref.c.target_id.in_(ids))
                        for t, ids in group_ids_by_type(keys).items()
                    )
                ),
                self._on_this_server(),
                resource.c.deleted == false(),
                *scope_conditions(self.scope, [inc.source_type]),
            )
            .distinct()
        )
        return [_stored(r) for r in self.conn.execute(statement)]

    def _on_this_server(self) -> ColumnElement[bool]:
        """Index rows whose reference is relative or an absolute URL on this server: a reference
        to `http://other.org/fhir/Patient/1` is not the local Patient/1 (search.html#reference)."""
        url = search_reference.c.target_url
        if not self.base_url:
            return url.is_(None)
        return or_(url.is_(None), url.startswith(self.base_url + "/", autoescape=True))

    # -- history --------------------------------------------------------------------------------
    def history(
        self,
        res_type: str | None = None,
        res_id: str | None = None,
        *,
        since: datetime | None = None,
        count: int = 50,
        offset: int = 0,
    ) -> HistoryPage:
        """Versions newest first (R4 http.html#history), current and superseded together."""
        current = select(
            resource.c.pk,
            resource.c.res_type,
            resource.c.res_id,
            resource.c.version,
            resource.c.last_updated,
            resource.c.deleted,
            resource.c.method,
            resource.c.content,
        )
        past = select(
            literal(0).label("pk"),
            resource_history.c.res_type,
            resource_history.c.res_id,
            resource_history.c.version,
            resource_history.c.last_updated,
            resource_history.c.deleted,
            resource_history.c.method,
            resource_history.c.content,
        )
        for table, name in ((resource, "current"), (resource_history, "past")):
            filters = []
            if res_type:
                filters.append(table.c.res_type == res_type)
            if res_id:
                filters.append(table.c.res_id == res_id)
            if since:
                filters.append(table.c.last_updated >= since)
            if name == "current":
                current = current.where(*filters)
            else:
                past = past.where(*filters)
        if not self.scope.unrestricted:
            types = [res_type] if res_type else []
            current = current.where(*scope_conditions(self.scope, types))
            past = past.where(self._visible_current(types))
        versions = union_all(current, past).subquery()
        total = self.conn.execute(select(func.count()).select_from(versions)).scalar_one()
        rows = self.conn.execute(
            select(versions)
            .order_by(versions.c.last_updated.desc(), versions.c.version.desc())
            .limit(count)
            .offset(offset)
        )
        return HistoryPage([_stored(r) for r in rows], int(total))

    def _visible_current(self, types: list[str]) -> ColumnElement[bool]:
        """History rows are visible when the resource's current version is (scope in SQL)."""
        return (
            select(resource.c.pk)
            .where(
                resource.c.res_type == resource_history.c.res_type,
                resource.c.res_id == resource_history.c.res_id,
                *scope_conditions(self.scope, types),
            )
            .exists()
        )

    # -- compartments ---------------------------------------------------------------------------
    def patient_compartment_keys(self, patient_id: str) -> list[tuple[str, str, int]]:
        """(type, id, pk) of every resource in the Patient's compartment (CompartmentDefinition)."""
        members = compartment_index_params()
        codes = sorted({code for params in members.values() for code in params})
        ref = search_reference
        rows = self.conn.execute(
            select(ref.c.res_type, ref.c.param, resource.c.res_id, resource.c.pk)
            .join(resource, resource.c.pk == ref.c.res_pk)
            .where(
                ref.c.target_type == "Patient",
                ref.c.target_id == patient_id,
                self._on_this_server(),
                ref.c.param.in_(codes),
                resource.c.deleted == false(),
            )
        )
        keys = {(t, i, pk) for t, code, i, pk in rows if code in members.get(t, ())}
        return sorted(keys)

    def patients_of(self, touched: Sequence[StoredResource]) -> set[str]:
        """Ids of the patients whose compartment the `touched` resources are in (for audit)."""
        members = compartment_index_params()
        found = {r.res_id for r in touched if r.res_type == "Patient"}
        pks = [r.pk for r in touched if r.pk and r.res_type in members and r.res_type != "Patient"]
        ref = search_reference
        for start in range(0, len(pks), 500):
            rows = self.conn.execute(
                select(ref.c.res_type, ref.c.param, ref.c.target_id).where(
                    ref.c.res_pk.in_(pks[start : start + 500]), ref.c.target_type == "Patient"
                )
            )
            found.update(i for t, p, i in rows if i and p in members.get(t, ()))
        return found

    def referenced_keys(self, pks: Sequence[int]) -> set[tuple[str, str]]:
        ref = search_reference
        found: set[tuple[str, str]] = set()
        for start in range(0, len(pks), 500):
            rows = self.conn.execute(
                select(ref.c.target_type, ref.c.target_id).where(
                    ref.c.res_pk.in_(pks[start : start + 500]),
                    ref.c.target_id.is_not(None),
                    self._on_this_server(),
                )
            )
            found.update((t, i) for t, i in rows if t)
        return found

    # -- urn aliases ----------------------------------------------------------------------------
    def resolve_urns(self, urns: Iterable[str]) -> dict[str, tuple[str, str]]:
        wanted = list(dict.fromkeys(urns))
        found: dict[str, tuple[str, str]] = {}
        for start in range(0, len(wanted), 500):
            rows = self.conn.execute(
                select(urn_alias).where(urn_alias.c.urn.in_(wanted[start : start + 500]))
            )
            found.update({r.urn: (r.res_type, r.res_id) for r in rows})
        return found


def _patient_data(types: Sequence[str]) -> bool:
    """Whether a search of `types` (none: every type) may match resources in a patient's
    compartment, the only ones a policy decides per row (others are a condition on the type)."""
    members = compartment_index_params()
    return not types or any(t in members for t in types)
