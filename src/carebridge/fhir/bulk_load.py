"""Bulk loading of NDJSON and Bundle files, bypassing HTTP (the `carebridge load` and $import path).

NDJSON resources are written in batches of `batch_size` through the same BatchWriter as REST
writes (so versioning, history and indexes are identical), one transaction per batch: a crash
loses at most the batch in flight, and re-running a file is a no-op because unchanged content
creates no new version. Each resource gets the cheap shape check; full structural validation
(`fhir.resources`, ~3,000 resources/s per core) is opt-in with `validate=True`.

A record that cannot be stored goes to the dead-letter list with its source and reason; the load
goes on. Bundle files are processed as transactions/batches, in dependency order, so a file whose
`urn:uuid:` references point into another file is loaded after that file.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine

from carebridge.fhir.bulk_indexes import deferred_indexes
from carebridge.fhir.records import Method, WriteOp
from carebridge.fhir.references import iter_references
from carebridge.fhir.service import FhirContext
from carebridge.fhir.store import FhirStore
from carebridge.fhir.transaction import process_bundle
from carebridge.fhir.validation import check_shape, validate_resource
from carebridge.fhir.writer import serialized_create
from carebridge.kit.clock import utc_now
from carebridge.kit.collector import collect_rarely, fewer_collections
from carebridge.kit.db import refresh_statistics
from carebridge.kit.errors import AppError
from carebridge.kit.ids import new_id

Progress = Callable[[int], None]
_NDJSON_BUNDLE_CONTEXT = FhirContext(base_url="")  # Bundles found in NDJSON files


@dataclass(frozen=True)
class DeadLetter:
    source: str
    reason: str


@dataclass
class LoadReport:
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (type, outcome) -> n
    dead_letters: list[DeadLetter] = field(default_factory=list)

    def count(self, res_type: str, outcome: str, n: int = 1) -> None:
        self.outcomes[(res_type, outcome)] += n

    @property
    def stored(self) -> int:
        return sum(n for (_, outcome), n in self.outcomes.items() if outcome != "failed")

    def merge(self, other: LoadReport) -> None:
        self.outcomes.update(other.outcomes)
        self.dead_letters.extend(other.dead_letters)


@dataclass(frozen=True)
class Record:
    source: str
    resource: dict[str, Any]


@dataclass(frozen=True)
class Prepared:
    """A parsed, checked NDJSON line with its index rows, or the reason it was refused."""

    source: str
    op: WriteOp | None
    error: str | None
    res_type: str
    bundle: dict[str, Any] | None = None  # a transaction/batch Bundle line: processed as such


def prepare_lines(
    lines: list[tuple[str, bytes]], validate: bool, packed: bool = False
) -> list[Prepared]:
    """Parse, check, index and serialize a chunk of NDJSON lines (runs in a worker process).

    Each resource leaves here as the JSON it will be stored as when it is new (version 1, stamped
    now), so the writer hands bytes to the database instead of rebuilding dicts; a resource that
    turns out to exist already is decoded and versioned by the writer as usual. `packed`: index
    rows packed for SQLite to unpack (packed_rows.py)."""
    stamp = utc_now().replace(tzinfo=None)
    out = []
    for source, line in lines:
        try:
            resource = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            out.append(Prepared(source, None, f"not valid JSON: {exc}", "?"))
            continue
        if _is_instruction_bundle(resource):
            out.append(Prepared(source, None, None, "Bundle", bundle=resource))
            continue
        report = LoadReport()
        op = _op_for(Record(source, resource), validate, report)
        if op is None:
            rtype = resource.get("resourceType", "?") if isinstance(resource, dict) else "?"
            out.append(Prepared(source, None, report.dead_letters[0].reason, str(rtype)))
            continue
        op = serialized_create(op, stamp, packed=packed)
        out.append(Prepared(source, op, None, op.res_type))
    return out


def _is_instruction_bundle(resource: Any) -> bool:
    """NDJSON holds resources; a transaction or batch Bundle line is read as the request it is."""
    return (
        isinstance(resource, dict)
        and resource.get("resourceType") == "Bundle"
        and resource.get("type") in ("transaction", "batch")
    )


def _line_chunks(path: Path, size: int) -> Iterator[list[tuple[str, bytes]]]:
    chunk: list[tuple[str, bytes]] = []
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                chunk.append((f"{path.name}:{number}", line))
            if len(chunk) >= size:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def load_ndjson(
    engine: Engine,
    path: Path,
    *,
    batch_size: int = 2000,
    validate: bool = False,
    workers: int = 1,
    progress: Progress | None = None,
    defer_indexes: bool = False,
    tune_gc: bool = False,
) -> LoadReport:
    """Load an NDJSON file: worker processes parse and index, this process writes.

    With `workers=0` everything runs in this process. Each batch is one transaction. With
    `defer_indexes` the search lookup indexes are dropped first and built once at the end
    (bulk_indexes.py): for initial loads much larger than the store. `tune_gc` makes the cyclic
    garbage collector run rarely in this process and the workers (kit/collector.py): for
    command-line loads, not inside the API's process.
    """
    report = LoadReport()
    chunks = _line_chunks(path, batch_size)
    with deferred_indexes(engine, defer_indexes), fewer_collections(tune_gc):
        _load_chunks(engine, chunks, validate, workers, report, progress, tune_gc)
    refresh_statistics(engine, full=True)  # once, after the indexes are back
    return report


def _load_chunks(
    engine: Engine,
    chunks: Iterator[list[tuple[str, bytes]]],
    validate: bool,
    workers: int,
    report: LoadReport,
    progress: Progress | None,
    tune_gc: bool,
) -> None:
    packed = engine.dialect.name == "sqlite"
    if workers <= 0:
        for chunk in chunks:
            _write_prepared(engine, prepare_lines(chunk, validate, packed), report, progress)
        return
    initializer = collect_rarely if tune_gc else None
    with ProcessPoolExecutor(max_workers=workers, initializer=initializer) as pool:
        pending: deque[Future[list[Prepared]]] = deque()
        for chunk in chunks:
            pending.append(pool.submit(prepare_lines, chunk, validate, packed))
            if len(pending) > workers + 1:
                _write_prepared(engine, pending.popleft().result(), report, progress)
        while pending:
            _write_prepared(engine, pending.popleft().result(), report, progress)


def _write_prepared(
    engine: Engine, prepared: list[Prepared], report: LoadReport, progress: Progress | None
) -> None:
    batch: list[tuple[Record, WriteOp]] = []
    for item in prepared:
        if item.bundle is not None:  # keep file order: what came before is stored first
            if batch:
                _flush(engine, batch, report, None)
                batch = []
            report.merge(
                load_bundle(engine, _NDJSON_BUNDLE_CONTEXT, Path(item.source), item.bundle, 100_000)
            )
        elif item.op is None:
            report.count(item.res_type, "failed")
            report.dead_letters.append(DeadLetter(item.source, item.error or "refused"))
        else:
            batch.append((Record(item.source, item.op.content or {}), item.op))
    if batch:
        _flush(engine, batch, report, None)
    if progress:
        progress(len(prepared))


def read_ndjson(path: Path, report: LoadReport) -> Iterator[Record]:
    """Parse an NDJSON file line by line; unparsable lines go to the dead-letter list."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            source = f"{path.name}:{number}"
            try:
                resource = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                report.dead_letters.append(DeadLetter(source, f"not valid JSON: {exc}"))
                continue
            yield Record(source, resource)


def load_records(
    engine: Engine,
    records: Iterable[Record],
    *,
    batch_size: int = 1000,
    validate: bool = False,
    progress: Progress | None = None,
) -> LoadReport:
    """Store resources with their own ids (update-or-create), batch by batch."""
    report = LoadReport()
    batch: list[tuple[Record, WriteOp]] = []
    for record in records:
        op = _op_for(record, validate, report)
        if op is None:
            continue
        batch.append((record, op))
        if len(batch) >= batch_size:
            _flush(engine, batch, report, progress)
            batch = []
    if batch:
        _flush(engine, batch, report, progress)
    return report


def _op_for(record: Record, validate: bool, report: LoadReport) -> WriteOp | None:
    try:
        resource = validate_resource(record.resource) if validate else check_shape(record.resource)
    except AppError as exc:
        rtype = (
            record.resource.get("resourceType", "?") if isinstance(record.resource, dict) else "?"
        )
        report.count(str(rtype), "failed")
        report.dead_letters.append(DeadLetter(record.source, exc.message))
        return None
    res_id = resource.get("id") or new_id()
    return WriteOp(Method.PUT, resource["resourceType"], res_id, {**resource, "id": res_id})


def _flush(
    engine: Engine,
    batch: list[tuple[Record, WriteOp]],
    report: LoadReport,
    progress: Progress | None,
) -> None:
    try:
        with engine.begin() as conn:
            results = FhirStore(conn).write_many([op for _, op in batch])
        for result in results:
            report.count(result.op.res_type, result.outcome.value)
    except AppError:
        for record, op in batch:  # isolate the record(s) that failed the batch
            _store_one(engine, record, op, report)
    if progress:
        progress(len(batch))


def _store_one(engine: Engine, record: Record, op: WriteOp, report: LoadReport) -> None:
    try:
        with engine.begin() as conn:
            result = FhirStore(conn).write([op])[0]
        report.count(op.res_type, result.outcome.value)
    except AppError as exc:
        report.count(op.res_type, "failed")
        report.dead_letters.append(DeadLetter(record.source, exc.message))


def load_bundle(
    engine: Engine, ctx: FhirContext, path: Path, bundle: Any, max_entries: int
) -> LoadReport:
    """One transaction/batch Bundle file, in one database transaction."""
    report = LoadReport()
    outcomes: dict[int, str] = {}
    try:
        with engine.begin() as conn:
            store = FhirStore(conn, ctx.base_url)
            response = process_bundle(
                store, ctx, bundle, max_entries=max_entries, minimal=True, outcomes=outcomes
            )
    except AppError as exc:
        report.count("Bundle", "failed")
        report.dead_letters.append(DeadLetter(path.name, exc.message))
        return report
    entries = zip(bundle.get("entry") or [], response["entry"], strict=True)
    for index, (request_entry, response_entry) in enumerate(entries):
        rtype = str((request_entry.get("resource") or {}).get("resourceType", "?"))
        if "outcome" in response_entry:
            report.count(rtype, "failed")
            diagnostics = response_entry["outcome"]["issue"][0].get("diagnostics", "failed")
            report.dead_letters.append(
                DeadLetter(f"{path.name} {request_entry.get('fullUrl', '')}", diagnostics)
            )
        else:
            report.count(rtype, outcomes.get(index, "read"))
    return report


def bundle_order(bundles: dict[Path, Any]) -> list[Path]:
    """Files ordered so that a file defining a `urn:` fullUrl comes before files referencing it."""
    defines = {
        entry.get("fullUrl"): path
        for path, bundle in bundles.items()
        for entry in bundle.get("entry") or []
        if isinstance(entry, dict) and str(entry.get("fullUrl", "")).startswith("urn:")
    }
    needs: dict[Path, set[Path]] = {}
    for path, bundle in bundles.items():
        own = {e.get("fullUrl") for e in bundle.get("entry") or [] if isinstance(e, dict)}
        refs = {
            r
            for e in bundle.get("entry") or []
            if isinstance(e, dict)
            for r in iter_references(e.get("resource"))
        }
        needs[path] = {defines[r] for r in refs - own if r in defines and defines[r] != path}
    ordered: list[Path] = []
    visiting: set[Path] = set()

    def visit(path: Path) -> None:
        if path in ordered or path in visiting:
            return
        visiting.add(path)
        for dependency in sorted(needs[path]):
            visit(dependency)
        ordered.append(path)

    for path in sorted(bundles):
        visit(path)
    return ordered
