"""Rows to write operations with their search index rows: the CPU-heavy half of a CSV ingest.

Runs in worker processes (like `fhir.bulk_load.prepare_lines`), so the main process only matches
patients and writes. Nothing here touches the database. A worker remembers the shared resources
(patients, stores, prescribers, drugs, prescriptions, payers, coverages) it has already emitted in
this run and emits each only once, from the first row that carries it; the main process drops the
ones another worker or an earlier batch already wrote.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from carebridge.fhir.records import Method, WriteOp
from carebridge.fhir.writer import serialized_create
from carebridge.ingest.mappers.fields import check_encoding
from carebridge.ingest.records import MappedResource, RowError
from carebridge.ingest.sources.delimited import CsvSource, RawRow
from carebridge.kit.clock import utc_now


@dataclass(frozen=True)
class Assignment:
    """The patient the matching rule chose for a row; `owns_patient` when the row's feed created
    that Patient and therefore writes it."""

    patient_id: str
    owns_patient: bool


@dataclass(frozen=True)
class PreparedResource:
    op: WriteOp
    shared: bool
    merged: bool = False  # `MappedResource.merged`


@dataclass(frozen=True)
class PreparedRow:
    line: int
    resources: tuple[PreparedResource, ...]
    error: str | None


class RowPreparer:
    """Maps rows and serializes what they write as new resources (version 1, stamped when the
    batch is prepared; `serialized_create`), so the writer hands bytes to the database. `packed`:
    search index rows packed for SQLite to unpack (fhir/packed_rows.py)."""

    def __init__(self, source: CsvSource, packed: bool = False) -> None:
        self.source = source
        self.packed = packed
        self.columns = source.feed.column_names
        self.emitted: set[tuple[str, str]] = set()

    def prepare(
        self, rows: Sequence[RawRow], assignments: Sequence[Assignment | None]
    ) -> list[PreparedRow]:
        stamp = utc_now()
        return [self._row(row, a, stamp) for row, a in zip(rows, assignments, strict=True)]

    def _row(self, row: RawRow, assignment: Assignment | None, stamp: datetime) -> PreparedRow:
        line, fields = row
        try:
            mapped = self._map(fields, assignment)
        except RowError as exc:
            return PreparedRow(line, (), str(exc))
        fresh = [m for m in mapped if self._first(m)]
        return PreparedRow(line, tuple(self._prepared(m, stamp) for m in fresh), None)

    def _prepared(self, mapped: MappedResource, stamp: datetime) -> PreparedResource:
        op = WriteOp(Method.PUT, mapped.res_type, mapped.res_id, mapped.build())
        prepared = serialized_create(op, stamp, packed=self.packed)
        return PreparedResource(prepared, mapped.shared, mapped.merged)

    def _map(self, fields: tuple[str, ...], assignment: Assignment | None) -> list[MappedResource]:
        if len(fields) != len(self.columns):
            raise RowError(f"row: {len(fields)} fields, the feed has {len(self.columns)}")
        check_encoding(fields)
        record = dict(zip(self.columns, fields, strict=True))
        if assignment is None:
            self.source.patient_of(record)  # raises the reason the patient could not be read
            raise RowError("row: no patient could be assigned")
        return self.source.map_row(record, assignment.patient_id, assignment.owns_patient)

    def _first(self, mapped: MappedResource) -> bool:
        if not mapped.shared:
            return True
        if mapped.key in self.emitted:
            return False
        self.emitted.add(mapped.key)
        return True


# What a worker sends back for a batch: the stamp once, then per row (line, error, resources),
# each resource as plain values. Pickling the dataclasses instead cost the worker 27 µs and the
# writer process 15 µs per row (30,000 dispensing rows, 2.3 resources each), this 12 and 5.
Wire = tuple[datetime | None, list[tuple[int, str | None, tuple[tuple[Any, ...], ...]]]]


def to_wire(rows: Sequence[PreparedRow]) -> Wire:
    """`rows` (as `RowPreparer.prepare` makes them: new resources, one stamp) as plain values."""
    stamp = next((r.op.stamped for row in rows for r in row.resources), None)
    return stamp, [
        (
            row.line,
            row.error,
            tuple(
                (
                    r.op.res_type,
                    r.op.res_id,
                    r.shared,
                    r.merged,
                    r.op.encoded,
                    r.op.index,
                    r.op.packed,
                )
                for r in row.resources
            ),
        )
        for row in rows
    ]


def from_wire(wire: Wire) -> list[PreparedRow]:
    stamp, rows = wire
    return [
        PreparedRow(
            line,
            tuple(
                PreparedResource(
                    WriteOp(Method.PUT, t, i, None, None, None, index, encoded, stamp, packed),
                    shared,
                    merged,
                )
                for t, i, shared, merged, encoded, index, packed in resources
            ),
            error,
        )
        for line, error, resources in rows
    ]


_WORKER: RowPreparer | None = None


def start_worker(
    source: CsvSource, gc_thresholds: tuple[int, int, int] | None = None, packed: bool = False
) -> None:
    """ProcessPoolExecutor initializer: one preparer per worker process and run."""
    global _WORKER
    _WORKER = RowPreparer(source, packed)
    if gc_thresholds:
        gc.set_threshold(*gc_thresholds)


def prepare_in_worker(rows: Sequence[RawRow], assignments: Sequence[Assignment | None]) -> Wire:
    if _WORKER is None:
        raise RuntimeError("the worker was started without a source")
    return to_wire(_WORKER.prepare(rows, assignments))
