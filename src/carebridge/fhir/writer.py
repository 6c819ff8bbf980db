"""Batched, versioned writes: one statement per table per batch, never one per row.

A batch is applied inside the caller's transaction. Superseded versions move to
`resource_history`; an update whose content equals the current version (ignoring meta.versionId and
meta.lastUpdated) creates no new version, so re-running a load is a no-op (ADR 0003).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import Connection, bindparam, delete, insert, select, update

from carebridge.fhir.driver_insert import (
    DuplicateKeyError,
    insert_absent_resources,
    insert_index_rows,
    insert_resources,
)
from carebridge.fhir.packed_rows import insert_packed_rows, pack_index_rows
from carebridge.fhir.records import Method, Outcome, StoredResource, WriteOp, WriteResult
from carebridge.fhir.search.dates import instant_text
from carebridge.fhir.search.extract import IndexRows, index_rows
from carebridge.fhir.tables import INDEX_TABLES, resource, resource_history, urn_alias
from carebridge.kit.changes import note_writes
from carebridge.kit.clock import utc_now
from carebridge.kit.errors import ConflictError, InvalidRequestError, PreconditionFailedError

_CHUNK = 500


def same_content(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    """Equal apart from the server-managed meta.versionId and meta.lastUpdated."""
    return without_server_meta(a) == without_server_meta(b)


def without_server_meta(content: dict[str, Any] | None) -> dict[str, Any] | None:
    if content is None or "meta" not in content:
        return content
    meta = {k: v for k, v in content["meta"].items() if k not in ("versionId", "lastUpdated")}
    stripped = {k: v for k, v in content.items() if k != "meta"}
    if meta:
        stripped["meta"] = meta
    return stripped


def existing_rows(
    conn: Connection, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], StoredResource]:
    """Current rows for (type, id) keys: one indexed `IN` per type and chunk.

    (A row-value `(type, id) IN (...)` is not index-assisted on SQLite: it scans the table.)
    """
    found: dict[tuple[str, str], StoredResource] = {}
    for res_type, ids in group_ids_by_type(keys).items():
        for start in range(0, len(ids), _CHUNK):
            rows = conn.execute(
                select(resource).where(
                    resource.c.res_type == res_type,
                    resource.c.res_id.in_(ids[start : start + _CHUNK]),
                )
            )
            for row in rows:
                stored = StoredResource(**row._mapping)
                found[(stored.res_type, stored.res_id)] = stored
    return found


def group_ids_by_type(keys: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for res_type, res_id in dict.fromkeys(keys):
        grouped.setdefault(res_type, []).append(res_id)
    return grouped


class BatchWriter:
    """Applies a list of WriteOps in one go; create/update/delete semantics per R4 http.html."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def write(self, ops: Sequence[WriteOp], *, now: datetime | None = None) -> list[WriteResult]:
        _reject_duplicates(ops)
        note_writes(op.res_type for op in ops)
        now = (now or utc_now()).replace(tzinfo=None)
        current = existing_rows(self.conn, ((op.res_type, op.res_id) for op in ops))
        ops = [
            op.decoded() if op.encoded is not None and (op.res_type, op.res_id) in current else op
            for op in ops
        ]
        plans = [self._plan(op, current.get((op.res_type, op.res_id)), now) for op in ops]
        self._apply(plans, current)
        self._record_urns(ops)
        return [plan.result() for plan in plans]

    def create_absent(
        self, ops: Sequence[WriteOp], *, now: datetime | None = None
    ) -> list[StoredResource]:
        """Create version 1 of each resource whose (type, id) is not stored yet (current or
        deleted) and leave the others untouched; returns the rows created, without their
        content (it went to the database serialized, see `serialized_create`).

        The idempotent write of intake paths whose ids are dedupe keys (device readings): the
        existence check is the insert itself (`ON CONFLICT DO NOTHING`), not a lookup before it.
        """
        _reject_duplicates(ops)
        note_writes(op.res_type for op in ops)
        now = (now or utc_now()).replace(tzinfo=None)
        ready = [op if op.encoded is not None else serialized_create(op, now) for op in ops]
        rows = [_first_version_row(op, now) for op in ready]
        created = insert_absent_resources(self.conn, rows, [op.encoded or b"" for op in ready])
        kept = [
            (op, created[(op.res_type, op.res_id)])
            for op in ready
            if (op.res_type, op.res_id) in created
        ]
        _insert_new_index_rows(self.conn, [(op, pk, None) for op, pk in kept])
        return [_first_version_row(op, now, pk) for op, pk in kept]

    def _plan(self, op: WriteOp, existing: StoredResource | None, now: datetime) -> _Plan:
        if op.if_match is not None and (existing is None or existing.version != op.if_match):
            have = "no version" if existing is None else f"version {existing.version}"
            raise PreconditionFailedError(
                f"{op.res_type}/{op.res_id}: If-Match expects version {op.if_match},"
                f" the server has {have}"
            )
        if op.encoded is not None:  # a bulk create, serialized by the worker (existing is None)
            stamped = (op.stamped or now).replace(tzinfo=None)
            new = StoredResource(
                0, op.res_type, op.res_id, 1, stamped, False, op.method.value, None
            )
            return _Plan(op, None, Outcome.CREATED, new)
        if op.method == Method.DELETE:
            if existing is None or existing.deleted:
                return _Plan(op, existing, Outcome.NOT_PRESENT, None)
            return _Plan(op, existing, Outcome.DELETED, _next(existing, op, now, None))
        assert op.content is not None
        if existing is None:
            return _Plan(op, None, Outcome.CREATED, _version(op, 1, now, op.content))
        if op.method == Method.POST and op.urn is None:
            raise ConflictError(f"{op.res_type}/{op.res_id} already exists")
        if not existing.deleted and same_content(existing.content, {**op.content, "id": op.res_id}):
            return _Plan(op, existing, Outcome.UNCHANGED, existing)
        outcome = Outcome.CREATED if existing.deleted else Outcome.UPDATED
        return _Plan(op, existing, outcome, _next(existing, op, now, op.content))

    def _apply(self, plans: list[_Plan], current: dict[tuple[str, str], StoredResource]) -> None:
        del current
        changed = [p for p in plans if p.outcome not in (Outcome.UNCHANGED, Outcome.NOT_PRESENT)]
        superseded = [p for p in changed if p.existing is not None]
        created = [p for p in changed if p.existing is None]
        if superseded:
            self._move_to_history([p.existing for p in superseded if p.existing is not None])
            self._update_rows(superseded)
            self._delete_index_rows([p.existing.pk for p in superseded if p.existing is not None])
        if created:
            self._insert_rows(created)
        self._insert_index_rows([p for p in changed if p.new is not None and not p.new.deleted])

    def _move_to_history(self, rows: list[StoredResource]) -> None:
        self.conn.execute(
            insert(resource_history),
            [
                {
                    "res_type": r.res_type,
                    "res_id": r.res_id,
                    "version": r.version,
                    "last_updated": r.last_updated,
                    "deleted": r.deleted,
                    "method": r.method,
                    "content": r.content,
                }
                for r in rows
            ],
        )

    def _update_rows(self, plans: list[_Plan]) -> None:
        statement = (
            update(resource)
            .where(resource.c.pk == bindparam("b_pk"), resource.c.version == bindparam("b_old"))
            .values(
                version=bindparam("b_version"),
                last_updated=bindparam("b_updated"),
                deleted=bindparam("b_deleted"),
                method=bindparam("b_method"),
                content=bindparam("b_content"),
            )
        )
        params = [p.update_params() for p in plans]
        result = self.conn.execute(statement, params)
        if result.rowcount != len(params):
            raise ConflictError("a resource was modified concurrently; retry the request")

    def _insert_rows(self, plans: list[_Plan]) -> None:
        try:
            pks = insert_resources(
                self.conn,
                [p.new for p in plans if p.new is not None],
                [p.op.encoded for p in plans if p.new is not None],
            )
        except DuplicateKeyError as exc:
            raise ConflictError("a resource with that id was created concurrently") from exc
        for plan, pk in zip(plans, pks, strict=True):
            plan.assign_pk(pk)

    def _delete_index_rows(self, pks: list[int]) -> None:
        for table in INDEX_TABLES.values():
            for start in range(0, len(pks), _CHUNK):
                self.conn.execute(
                    delete(table).where(table.c.res_pk.in_(pks[start : start + _CHUNK]))
                )

    def _insert_index_rows(self, plans: list[_Plan]) -> None:
        """Index rows for new versions; bulk loads hand them in precomputed (`WriteOp.index`,
        `WriteOp.packed`) with the content serialized (`WriteOp.encoded`)."""
        _insert_new_index_rows(
            self.conn, [(p.op, p.new.pk, p.new.content) for p in plans if p.new is not None]
        )

    def _record_urns(self, ops: Sequence[WriteOp]) -> None:
        urns = {op.urn: op for op in ops if op.urn and op.method != Method.DELETE}
        if not urns:
            return
        known = {
            row.urn
            for start in range(0, len(urns), _CHUNK)
            for row in self.conn.execute(
                select(urn_alias.c.urn).where(
                    urn_alias.c.urn.in_(list(urns)[start : start + _CHUNK])
                )
            )
        }
        fresh = [
            {"urn": urn, "res_type": op.res_type, "res_id": op.res_id}
            for urn, op in urns.items()
            if urn not in known
        ]
        if fresh:
            self.conn.execute(insert(urn_alias), fresh)


_Written = tuple[WriteOp, int, dict[str, Any] | None]  # op, primary key, content as stored


def _insert_new_index_rows(conn: Connection, written: list[_Written]) -> None:
    """The index rows of new versions: packed ones unpacked by the database, the others from
    `op.index` or extracted from the stored content (else the serialized one) now."""
    insert_packed_rows(conn, ((pk, op.res_type, op.packed) for op, pk, _ in written if op.packed))
    insert_index_rows(
        conn,
        (
            (pk, op.res_type, op.index or _extracted(op, content))
            for op, pk, content in written
            if not op.packed
        ),
    )


def _extracted(op: WriteOp, content: dict[str, Any] | None) -> IndexRows:
    if content is None:
        content = orjson.loads(op.encoded or b"{}")
    return index_rows(content or {})


@lru_cache(maxsize=16)
def _stamp_text(stamp: datetime) -> str:
    return instant_text(stamp)  # a batch shares one stamp: formatted once


def serialized_create(op: WriteOp, stamp: datetime, *, packed: bool = False) -> WriteOp:
    """`op` as version 1 stamped at `stamp`: its search index rows computed and its content
    serialized with meta.versionId and meta.lastUpdated, ready for a create (bulk loads, device
    readings). Done where the data is prepared, so the writer only hands bytes to the database.
    `packed`: the index rows packed for the database to unpack (packed_rows.py; for SQLite)."""
    content = {**(op.content or {}), "id": op.res_id}
    meta = {**(content.get("meta") or {}), "versionId": "1", "lastUpdated": _stamp_text(stamp)}
    stamped = {**content, "meta": meta}
    rows = op.index or index_rows(stamped)
    return WriteOp(
        op.method,
        op.res_type,
        op.res_id,
        None,
        op.if_match,
        op.urn,
        None if packed else rows,
        orjson.dumps(stamped),
        stamp.replace(tzinfo=None),
        pack_index_rows(rows) if packed else None,
    )


def _reject_duplicates(ops: Sequence[WriteOp]) -> None:
    seen: set[tuple[str, str]] = set()
    for op in ops:
        key = (op.res_type, op.res_id)
        if key in seen:
            raise InvalidRequestError(f"{op.res_type}/{op.res_id} is written twice in one request")
        seen.add(key)


def _with_meta(content: dict[str, Any], version: int, now: datetime) -> dict[str, Any]:
    meta = dict(content.get("meta") or {})
    meta["versionId"] = str(version)
    meta["lastUpdated"] = instant_text(now)
    return {**content, "meta": meta}


def _version(op: WriteOp, version: int, now: datetime, content: dict[str, Any]) -> StoredResource:
    body = _with_meta({**content, "id": op.res_id}, version, now)
    return StoredResource(0, op.res_type, op.res_id, version, now, False, op.method.value, body)


def _first_version_row(op: WriteOp, now: datetime, pk: int = 0) -> StoredResource:
    """The resource row of a serialized create (content left out: it travels as bytes)."""
    stamped = op.stamped or now
    return StoredResource(pk, op.res_type, op.res_id, 1, stamped, False, op.method.value, None)


def _next(
    existing: StoredResource, op: WriteOp, now: datetime, content: dict[str, Any] | None
) -> StoredResource:
    version = existing.version + 1
    if content is None:
        return StoredResource(
            existing.pk, op.res_type, op.res_id, version, now, True, op.method.value, None
        )
    stored = _version(op, version, now, content)
    return StoredResource(
        existing.pk,
        stored.res_type,
        stored.res_id,
        version,
        now,
        False,
        stored.method,
        stored.content,
    )


class _Plan:
    def __init__(
        self,
        op: WriteOp,
        existing: StoredResource | None,
        outcome: Outcome,
        new: StoredResource | None,
    ) -> None:
        self.op, self.existing, self.outcome, self.new = op, existing, outcome, new

    def result(self) -> WriteResult:
        return WriteResult(
            self.op, self.outcome, self.new if self.new is not None else self.existing
        )

    def assign_pk(self, pk: int) -> None:
        assert self.new is not None
        n = self.new
        self.new = StoredResource(
            pk, n.res_type, n.res_id, n.version, n.last_updated, n.deleted, n.method, n.content
        )

    def update_params(self) -> dict[str, Any]:
        assert self.new is not None
        assert self.existing is not None
        return {
            "b_pk": self.existing.pk,
            "b_old": self.existing.version,
            "b_version": self.new.version,
            "b_updated": self.new.last_updated,
            "b_deleted": self.new.deleted,
            "b_method": self.new.method,
            "b_content": self.new.content,
        }
