"""Ingest services for the CLI, the API and the demo: one feed file, a generator output
directory, and the run reports (runs, dead letters, the matching report)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Engine

from carebridge.ingest.feeds import CLAIMS, DISPENSING
from carebridge.ingest.pipeline import SOURCES, IngestOptions, Progress, ingest_csv
from carebridge.ingest.records import IngestReport
from carebridge.ingest.repository import IngestRepository, Run, StoredDeadLetter, StoredIssue
from carebridge.ingest.sources.fhir import ingest_fhir
from carebridge.kit.db import refresh_statistics

FHIR_DIR = "fhir"


def ingest_feed(
    engine: Engine,
    feed: str,
    path: Path,
    *,
    file_name: str | None = None,
    options: IngestOptions | None = None,
    progress: Progress | None = None,
) -> IngestReport:
    """Ingest one `dispensing` or `claims` CSV file (batched, resumable, dead letters)."""
    source = SOURCES[feed]
    return ingest_csv(engine, source, path, file_name=file_name, options=options, progress=progress)


def ingest_directory(
    engine: Engine,
    directory: Path,
    *,
    options: IngestOptions | None = None,
    progress: Progress | None = None,
) -> list[IngestReport]:
    """Ingest a `carebridge synth` output directory: provider records (`fhir/`) first, so the
    pharmacy and payer rows match the provider patients by identifier, then `dispensing.csv`,
    then `claims.csv`. Files that are missing are skipped. Statistics are refreshed once."""
    options = options or IngestOptions()
    per_file = IngestOptions(options.batch_size, options.workers, options.resume, analyze=False)
    reports: list[IngestReport] = []
    if (directory / FHIR_DIR).is_dir():
        fhir_options = IngestOptions(2000, options.workers, options.resume, analyze=False)
        reports += ingest_fhir(engine, [directory / FHIR_DIR], options=fhir_options)
    for feed, name in (("dispensing", DISPENSING.filename), ("claims", CLAIMS.filename)):
        if (directory / name).is_file():
            reports.append(
                ingest_feed(engine, feed, directory / name, options=per_file, progress=progress)
            )
    refresh_statistics(engine, full=True)
    return reports


def runs(engine: Engine, limit: int = 20) -> list[Run]:
    with engine.connect() as conn:
        return IngestRepository(conn).runs(limit)


def dead_letters(
    engine: Engine, run_id: str | None = None, limit: int = 100
) -> list[StoredDeadLetter]:
    with engine.connect() as conn:
        return IngestRepository(conn).dead_letters(run_id, limit)


def match_issues(
    engine: Engine, run_id: str | None = None, kinds: Sequence[str] = (), limit: int = 100
) -> list[StoredIssue]:
    with engine.connect() as conn:
        return IngestRepository(conn).issues(run_id, kinds, limit)
