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

from carebridge.fhir.records import Method, WriteOp
from carebridge.fhir.search.extract import index_rows
from carebridge.ingest.mappers.fields import check_encoding
from carebridge.ingest.records import MappedResource, RowError
from carebridge.ingest.sources.delimited import CsvSource, RawRow


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


@dataclass(frozen=True)
class PreparedRow:
    line: int
    resources: tuple[PreparedResource, ...]
    error: str | None


class RowPreparer:
    def __init__(self, source: CsvSource) -> None:
        self.source = source
        self.columns = source.feed.column_names
        self.emitted: set[tuple[str, str]] = set()

    def prepare(
        self, rows: Sequence[RawRow], assignments: Sequence[Assignment | None]
    ) -> list[PreparedRow]:
        return [self._row(row, a) for row, a in zip(rows, assignments, strict=True)]

    def _row(self, row: RawRow, assignment: Assignment | None) -> PreparedRow:
        line, fields = row
        try:
            mapped = self._map(fields, assignment)
        except RowError as exc:
            return PreparedRow(line, (), str(exc))
        fresh = [m for m in mapped if self._first(m)]
        return PreparedRow(line, tuple(_prepared(m) for m in fresh), None)

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


def _prepared(mapped: MappedResource) -> PreparedResource:
    content = mapped.build()
    op = WriteOp(Method.PUT, mapped.res_type, mapped.res_id, content, index=index_rows(content))
    return PreparedResource(op, mapped.shared)


_WORKER: RowPreparer | None = None


def start_worker(source: CsvSource, gc_thresholds: tuple[int, int, int] | None = None) -> None:
    """ProcessPoolExecutor initializer: one preparer per worker process and run."""
    global _WORKER
    _WORKER = RowPreparer(source)
    if gc_thresholds:
        gc.set_threshold(*gc_thresholds)


def prepare_in_worker(
    rows: Sequence[RawRow], assignments: Sequence[Assignment | None]
) -> list[PreparedRow]:
    if _WORKER is None:
        raise RuntimeError("the worker was started without a source")
    return _WORKER.prepare(rows, assignments)
