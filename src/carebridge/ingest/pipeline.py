"""The CSV ingest pipeline: read -> match patients -> map (worker processes) -> write, by batch.

Each batch is one transaction holding the FHIR writes (the store's one write path,
`fhir.writer.BatchWriter`, through `FhirStore.write`), the batch's dead letters, its patient index
writes and the run's checkpoint (last source line committed, running totals). So:

- a crash (even `kill -9`) loses at most the batch in flight, and running the same file again
  resumes after the checkpoint, with the same run id, to the same store as an uninterrupted run;
- running a file that was completely ingested again writes the same resources with the same ids
  (UUIDv5 of their source keys), which the writer records as unchanged: no new versions;
- a row that cannot be mapped goes to the dead letters with its line and reason; the run goes on.

Mapping and search-index extraction run in `workers` processes (0 = in this process); the main
process matches patients in row order, so results do not depend on the number of workers.
"""

from __future__ import annotations

import csv
import io
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine

from carebridge.fhir.bulk_indexes import deferred_indexes, worth_deferring
from carebridge.fhir.records import Method, WriteOp, WriteResult
from carebridge.fhir.store import FhirStore
from carebridge.fhir.writer import existing_rows, without_server_meta
from carebridge.ingest.linking import IndexWrites, PatientLinker
from carebridge.ingest.preparation import (
    Assignment,
    PreparedRow,
    RowPreparer,
    Wire,
    from_wire,
    prepare_in_worker,
    start_worker,
    to_wire,
)
from carebridge.ingest.records import IngestReport
from carebridge.ingest.repository import (
    COMPLETED,
    FAILED,
    RUNNING,
    DeadLetter,
    IngestRepository,
    Run,
    RunTotals,
)
from carebridge.ingest.sources import claims, dispensing
from carebridge.ingest.sources.delimited import (
    CsvSource,
    RawRow,
    check_file,
    file_sha256,
    read_rows,
)
from carebridge.kit.clock import utc_now
from carebridge.kit.collector import BULK_GC_THRESHOLDS, fewer_collections
from carebridge.kit.db import refresh_statistics
from carebridge.kit.ids import new_id

Progress = Callable[[int], None]
Submit = Callable[[list[RawRow], list[Assignment | None]], "Future[Wire]"]
SOURCES = {"dispensing": dispensing.SOURCE, "claims": claims.SOURCE}


@dataclass(frozen=True)
class IngestOptions:
    batch_size: int = 5000  # rows per transaction
    workers: int = 1  # mapping processes; 0 maps in this process
    resume: bool = True  # continue an unfinished run over the same bytes
    analyze: bool = True  # refresh planner statistics at the end
    tune_gc: bool = True  # raise the garbage collector's thresholds for the run (see below)
    defer_indexes: bool | None = None  # None: when the file is an initial load (bulk_indexes.py)


def ingest_csv(
    engine: Engine,
    source: CsvSource,
    path: Path,
    *,
    file_name: str | None = None,
    options: IngestOptions | None = None,
    progress: Progress | None = None,
) -> IngestReport:
    """Ingest one CSV feed file; see the module docstring for the guarantees."""
    options = options or IngestOptions()
    check_file(path, source.feed)
    run = open_run(engine, source.feed.name, file_name or path.name, file_sha256(path), options)
    job = _CsvRun(engine, source, run, progress)
    defer = options.defer_indexes
    if defer is None:  # each row writes at least two resources (e.g. a fill and its order)
        defer = worth_deferring(engine, 2 * _line_count(path))
    try:
        with fewer_collections(options.tune_gc), deferred_indexes(engine, defer):
            job.process(read_rows(path, source.feed, after_line=run.totals.last_line), options)
    except BaseException:
        with suppress(Exception):  # the database may be what failed; keep the original error
            close_run(engine, run.run_id, FAILED)
        raise
    close_run(engine, run.run_id, COMPLETED)
    if options.analyze:
        refresh_statistics(engine, full=True)
    return job.report


def _line_count(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def open_run(
    engine: Engine, feed: str, file_name: str, file_hash: str, options: IngestOptions
) -> Run:
    """Resume the unfinished run over the same bytes, or start a new one."""
    now = utc_now().replace(tzinfo=None)
    with engine.begin() as conn:
        repo = IngestRepository(conn)
        found = repo.resumable_run(feed, file_hash) if options.resume else None
        if found is not None:
            repo.set_status(found.run_id, RUNNING, now)
            return found
        run = Run(new_id(), feed, file_name, file_hash, RUNNING, now, None, RunTotals())
        repo.start_run(run)
        return run


def close_run(engine: Engine, run_id: str, status: str) -> None:
    with engine.begin() as conn:
        IngestRepository(conn).set_status(run_id, status, utc_now().replace(tzinfo=None))


class _CsvRun:
    def __init__(
        self, engine: Engine, source: CsvSource, run: Run, progress: Progress | None
    ) -> None:
        self.engine, self.source, self.run, self.progress = engine, source, run, progress
        self.linker = PatientLinker(source)
        self.written: set[tuple[str, str]] = set()
        self.totals = run.totals
        resumed = run.totals.last_line if run.totals.last_line > 1 else 0
        self.report = IngestReport(run.run_id, run.feed, run.file_name, resumed_after=resumed)
        self._count_totals()

    def process(self, rows: Iterator[RawRow], options: IngestOptions) -> None:
        depth = max(options.workers, 0) + 1
        packed = self.engine.dialect.name == "sqlite"
        with _preparers(self.source, options, packed) as submit:
            pending: deque[tuple[list[RawRow], list[Assignment | None], Future[Wire]]]
            pending = deque()
            for chunk in _chunks(rows, options.batch_size):
                assignments = self._assign(chunk)
                pending.append((chunk, assignments, submit(chunk, assignments)))
                if len(pending) > depth:
                    self._commit(*pending.popleft())
            while pending:
                self._commit(*pending.popleft())

    def _assign(self, chunk: list[RawRow]) -> list[Assignment | None]:
        with self.engine.connect() as conn:
            return self.linker.assign(IngestRepository(conn), chunk)

    def _commit(
        self,
        chunk: list[RawRow],
        assignments: list[Assignment | None],
        future: Future[Wire],
    ) -> None:
        prepared = from_wire(future.result())
        stored = [(row, a) for row, a in zip(prepared, assignments, strict=True) if not row.error]
        ops, shared, merged = self._ops(row for row, _ in stored)
        letters = _dead_letters(chunk, prepared)
        writes = self.linker.take(_first_lines(stored))
        totals = self._advance(chunk, len(letters))
        now = utc_now()
        with self.engine.begin() as conn:
            ops = self._merged_with_stored(conn, ops, merged)
            results = FhirStore(conn).write_many(ops, now=now)
            self._save(IngestRepository(conn), letters, writes, totals)
        self.totals = totals
        self.written |= shared
        self._record(results, writes)
        if _is_power_of_two(totals.batches):
            refresh_statistics(self.engine)
        if self.progress:
            self.progress(len(chunk))

    def _ops(
        self, rows: Iterable[PreparedRow]
    ) -> tuple[list[WriteOp], set[tuple[str, str]], set[tuple[str, str]]]:
        """Write operations of a batch: shared resources once per run, resources that several
        rows describe merged (the source's `merge_rules`), other facts last-one-wins. Also the
        keys of the shared and of the merged resources."""
        ops: dict[tuple[str, str], WriteOp] = {}
        shared: set[tuple[str, str]] = set()
        merged: set[tuple[str, str]] = set()
        for row in rows:
            for resource in row.resources:
                key = (resource.op.res_type, resource.op.res_id)
                if resource.shared:
                    if key in self.written or key in ops:
                        continue
                    shared.add(key)
                if resource.merged:
                    merged.add(key)
                    if key in ops:
                        ops[key] = self._merge(ops[key], _content(resource.op))
                        continue
                ops[key] = resource.op
        return list(ops.values()), shared, merged

    def _merge(self, op: WriteOp, content: dict[str, Any]) -> WriteOp:
        combined = self.source.merge_rules[op.res_type](_content(op), content)
        return WriteOp(Method.PUT, op.res_type, op.res_id, combined)

    def _merged_with_stored(
        self, conn: Connection, ops: list[WriteOp], merged: set[tuple[str, str]]
    ) -> list[WriteOp]:
        """`ops`, those of `merged` resources combined with their stored current version."""
        if not merged:
            return ops
        stored = existing_rows(conn, merged)
        combined = []
        for op in ops:
            found = stored.get((op.res_type, op.res_id))
            if found is not None and found.content is not None and not found.deleted:
                op = self._merge(op, without_server_meta(found.content) or {})
            combined.append(op)
        return combined

    def _save(
        self,
        repo: IngestRepository,
        letters: list[DeadLetter],
        writes: IndexWrites,
        totals: RunTotals,
    ) -> None:
        now = utc_now().replace(tzinfo=None)
        repo.add_dead_letters(self.run, letters, now)
        repo.add_links(writes.links, self.run.run_id)
        repo.add_patients(writes.patients)
        repo.add_issues(self.run, writes.issues, now)
        repo.save_checkpoint(self.run.run_id, totals, now)

    def _advance(self, chunk: list[RawRow], failed: int) -> RunTotals:
        t = self.totals
        return RunTotals(
            last_line=chunk[-1][0],
            batches=t.batches + 1,
            rows_read=t.rows_read + len(chunk),
            rows_loaded=t.rows_loaded + len(chunk) - failed,
            rows_failed=t.rows_failed + failed,
        )

    def _record(self, results: list[WriteResult], writes: IndexWrites) -> None:
        for result in results:
            self.report.count(result.op.res_type, result.outcome.value)
        self.report.issues.update(issue.kind.value for _, issue in writes.issues)
        self._count_totals()

    def _count_totals(self) -> None:
        self.report.rows = self.totals.rows_read
        self.report.loaded = self.totals.rows_loaded
        self.report.failed = self.totals.rows_failed


@contextmanager
def _preparers(source: CsvSource, options: IngestOptions, packed: bool) -> Iterator[Submit]:
    """Where rows are prepared: in worker processes (or here); `packed` index rows for SQLite."""
    if options.workers <= 0:
        preparer = RowPreparer(source, packed)

        def prepare_here(rows: list[RawRow], assignments: list[Assignment | None]) -> Future[Wire]:
            done: Future[Wire] = Future()
            done.set_result(to_wire(preparer.prepare(rows, assignments)))
            return done

        yield prepare_here
        return
    thresholds = BULK_GC_THRESHOLDS if options.tune_gc else None
    with ProcessPoolExecutor(
        options.workers, initializer=start_worker, initargs=(source, thresholds, packed)
    ) as pool:
        yield lambda rows, assignments: pool.submit(prepare_in_worker, rows, assignments)


def _is_power_of_two(n: int) -> bool:
    """Batches after which planner statistics are refreshed (1, 2, 4, 8, ...): tables grow from
    empty during a load, and a planner that still believes them empty picks plans whose cost
    grows with the table (on PostgreSQL, an index range over every resource of a type instead
    of the (type, id) lookup) until autovacuum, if it runs at all, analyzes them."""
    return n > 0 and n & (n - 1) == 0


def _chunks(rows: Iterator[RawRow], size: int) -> Iterator[list[RawRow]]:
    chunk: list[RawRow] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _content(op: WriteOp) -> dict[str, Any]:
    """A prepared operation's resource without the server's meta (it may be serialized)."""
    content = op.content if op.content is not None else orjson.loads(op.encoded or b"{}")
    return without_server_meta(content) or {}


def _first_lines(stored: list[tuple[PreparedRow, Assignment | None]]) -> dict[str, int]:
    first: dict[str, int] = {}
    for row, assignment in stored:
        if assignment is not None:
            first.setdefault(assignment.patient_id, row.line)
    return first


def _dead_letters(chunk: list[RawRow], prepared: list[PreparedRow]) -> list[DeadLetter]:
    if not any(row.error for row in prepared):
        return []
    fields = dict(chunk)
    return [
        DeadLetter(row.line, _csv_text(fields[row.line]), row.error)
        for row in prepared
        if row.error
    ]


def _csv_text(fields: tuple[str, ...]) -> str:
    """The row as CSV text; bytes that were not UTF-8 become U+FFFD."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(fields)
    return buffer.getvalue().encode("utf-8", "surrogateescape").decode("utf-8", "replace")
